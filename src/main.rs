//! hostmedic's entry point; everything lives in the library.

fn main() -> std::process::ExitCode {
    match hostmedic::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hostmedic: {}", hostmedic::cli::error_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
