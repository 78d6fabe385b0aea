//! The `zkparity` command line: parses, hands the command to [`cmd`], and
//! maps what it ends with to an exit code.

mod cmd;

use std::ffi::OsString;
use std::process::ExitCode;

use zkparity::error::EXIT_ERROR;
use zkparity::nagios::output::State;

/// `check_zkparity_parity` (a link to zkparity, see plugins/) runs
/// `zkparity check parity`: the names Nagios users expect.
fn plugin_check_name(argv0: &OsString) -> Option<String> {
    let name = std::path::Path::new(argv0).file_name()?.to_str()?;
    name.strip_prefix("check_zkparity_").map(str::to_string)
}

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    if let Some(check) = argv.first().and_then(plugin_check_name) {
        argv.splice(1..1, [OsString::from("check"), OsString::from(check)]);
    }
    let check_mode = argv.get(1).is_some_and(|a| a == "check");
    let cli = match cmd::parse(&argv) {
        Ok(cli) => cli,
        Err(e) if check_mode => return cmd::check::usage_error(&argv, e),
        Err(e) => return cmd::values::refused(e),
    };
    // A check answers UNKNOWN (3) for its own failures; other commands use 2.
    let failure = if check_mode {
        State::Unknown.exit_code()
    } else {
        EXIT_ERROR
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zkparity: error: cannot start the async runtime: {e}");
            return ExitCode::from(failure as u8);
        }
    };
    match runtime.block_on(cli.command.run()) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("zkparity: error: {e}");
            ExitCode::from(if check_mode {
                e.check_exit_code()
            } else {
                e.exit_code()
            } as u8)
        }
    }
}
