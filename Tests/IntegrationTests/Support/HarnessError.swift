/// A failure of the test harness itself (could not start Postgres, the pooler
/// exited, a helper command failed), as opposed to a behaviour under test.
struct HarnessError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
