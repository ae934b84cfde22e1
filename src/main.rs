//! The `wsbroadcaster` command line; all logic lives in the library.

fn main() -> std::process::ExitCode {
    wsbroadcaster::cli::main()
}
