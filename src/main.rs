//! The `meshgen` binary: run the CLI, print any unexpected failure with
//! its cause chain, and exit with the code the CLI chose.

mod cli;

use std::process::ExitCode;

/// mimalloc: meshgen allocates millions of small strings and maps at
/// scale, from several threads; glibc's allocator spent a third of a
/// 10,000-profile run. Built without transparent huge pages (`no_thp`):
/// zeroing 2 MiB pages that a short run barely fills cost more than
/// anything but the YAML parser.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            // A broken stdout pipe (`meshgen generate | head`) is not an error.
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            // What failed past the library: writing stdout, mostly.
            let code = meshgen::code::Code::Output;
            eprintln!("error[{code}]: {e:#}");
            ExitCode::from(1)
        }
    }
}
