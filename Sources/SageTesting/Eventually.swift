/// Polls `condition` until it holds or `timeout` passes, for effects seen from outside (a
/// server noticing a closed connection, a health monitor marking an instance). Returns
/// whether it held. The timeout is a ceiling for a failing test, not a measurement.
package func eventually(timeout: Duration = .seconds(5), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))  // polling interval; cancellation ends the wait early
    }
    return await condition()
}

/// A test helper could not set up what it needed.
package struct TestingError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}
