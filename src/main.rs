//! The `sandbox` binary: a thin shell over the library (see `cli`).

fn main() -> std::process::ExitCode {
    sandbox::cli::main()
}
