//! The `countersign` binary: see the crate docs of `countersign_server`.

fn main() -> std::process::ExitCode {
    countersign_server::main()
}
