//! The `wsbroadcaster` command line.

fn main() {
    eprintln!("wsbroadcaster: the server is not built yet");
    std::process::exit(2);
}
