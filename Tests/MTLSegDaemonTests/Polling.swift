import Foundation

/// Checks `condition` every 10 ms until it holds or `seconds` have passed; whether it held. Tests
/// wait for what they expect this way instead of sleeping a fixed time and hoping it happened.
func eventually(within seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        if try condition() { return true }
        if Date() >= deadline { return false }
        usleep(10_000)
    }
}
