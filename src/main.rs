//! hostmedic's entry point; everything lives in the library.

fn main() -> std::process::ExitCode {
    match hostmedic::cli::main() {
        Ok(code) => code,
        Err(e) => {
            // Every cause, each once (some errors also show their source).
            eprintln!("hostmedic: {}", hostmedic::error::chain(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}
