//! The command line as people type it: Docker's habits and the old spellings.

use clap::Parser;

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("sandbox").chain(args.iter().copied()))
}

fn run_args(args: &[&str]) -> RunArgs {
    match parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}")).command {
        Command::Run(run) => run,
        _ => panic!("not run"),
    }
}

fn command_of(args: &[&str]) -> (Option<String>, Vec<String>) {
    let run = run_args(args);
    (run.profile, joined_command(run.command, run.after_dashes))
}

#[test]
fn run_takes_the_command_after_the_profile_as_docker_does() {
    assert_eq!(command_of(&["run", "shell", "bash"]), (Some("shell".into()), vec!["bash".into()]));
    // Once the command starts, its flags are its own (`-e` is bash's here, `--name` echo's).
    let (_, command) = command_of(&["run", "shell", "bash", "-e", "-c", "echo --name"]);
    assert_eq!(command, ["bash", "-e", "-c", "echo --name"]);
    // `--` still works, with and without a profile.
    assert_eq!(command_of(&["run", "--", "ls", "-l", "/"]), (None, vec!["ls".into(), "-l".into(), "/".into()]));
    assert_eq!(command_of(&["run", "python", "--", "python3", "-V"]), (Some("python".into()), vec!["python3".into(), "-V".into()]));
    // A `--` inside the command is the command's: `grep -- -x file`.
    assert_eq!(command_of(&["run", "shell", "grep", "--", "-x", "f"]).1, ["grep", "--", "-x", "f"]);
    assert_eq!(command_of(&["run"]), (None, vec![]));
}

#[test]
fn run_accepts_the_flags_people_type() {
    let run = run_args(&[
        "run",
        "-it",
        "--rm",
        "-e",
        "A=1",
        "--env",
        "B=2",
        "-v",
        "/srv/data:/data:ro",
        "-w",
        "/data",
        "-u",
        "root",
        "--name",
        "alice",
        "shell",
        "sh",
    ]);
    assert!(run.terminal.interactive && run.terminal.tty && run.rm);
    assert_eq!(run.overrides.env, ["A=1", "B=2"]);
    assert_eq!(run.overrides.volumes, ["/srv/data:/data:ro"]);
    assert_eq!(run.overrides.workdir.as_deref(), Some("/data"));
    assert_eq!(run.overrides.user.as_deref(), Some("root"));
    assert_eq!(run.name.as_deref(), Some("alice"));
    assert_eq!(run.command, ["sh"]);
    // Flags after the profile and before the command are still the tool's.
    let run = run_args(&["run", "shell", "--mode", "chroot", "-e", "X=1", "id"]);
    assert!(matches!(run.mode, Some(ModeArg::Chroot)));
    assert_eq!((run.overrides.env.as_slice(), run.command.as_slice()), (&["X=1".to_string()][..], &["id".to_string()][..]));
    // What `start` runs for each instance (with SANDBOX_BACKGROUND=1).
    let run = run_args(&["run", "/abs/lab.toml", "--name", "bob"]);
    assert!(run.command.is_empty() && run.name.as_deref() == Some("bob"));
}

#[test]
fn exec_and_explain_take_the_command_both_ways() {
    let Command::Exec { name, command, after_dashes, terminal, .. } = parse(&["exec", "-it", "alice", "ls", "-l"]).unwrap().command else {
        panic!()
    };
    assert_eq!((name.as_str(), joined_command(command, after_dashes)), ("alice", vec!["ls".to_string(), "-l".to_string()]));
    assert!(terminal.interactive && terminal.tty);
    let Command::Exec { command, after_dashes, .. } = parse(&["exec", "alice", "--", "id"]).unwrap().command else { panic!() };
    assert_eq!(joined_command(command, after_dashes), ["id"]);
    let Command::Explain { profile, command, after_dashes, .. } = parse(&["explain", "--dry-run", "shell", "id", "-u"]).unwrap().command
    else {
        panic!()
    };
    assert_eq!((profile.as_str(), joined_command(command, after_dashes)), ("shell", vec!["id".to_string(), "-u".to_string()]));
    let Command::Explain { profile, command, after_dashes, .. } = parse(&["explain", "--", "id"]).unwrap().command else { panic!() };
    assert_eq!((profile.as_str(), joined_command(command, after_dashes)), ("shell", vec!["id".to_string()]));
}

#[test]
fn color_and_json_flags() {
    let cli = parse(&["--color", "never", "ps"]).unwrap();
    assert_eq!(cli.color, ColorChoice::Never);
    let cli = parse(&["check", "shell", "--json", "--color=always"]).unwrap();
    assert_eq!(cli.color, ColorChoice::Always);
    assert!(wants_json(&cli.command));
    for args in [&["why", "/bin/sh", "--json"][..], &["export", "--oci", "x", "--json"], &["import", "x.tar", "--json"]] {
        assert!(wants_json(&parse(args).unwrap().command), "{args:?}");
    }
    assert!(parse(&["--color", "sometimes", "ps"]).is_err());
    assert!(parse(&["export", "--k8s", "--json"]).is_err(), "the manifest owns stdout");
}

#[test]
fn colors_follow_the_flag_then_no_color_then_clicolor_force() {
    use super::output::colors_on;
    let env =
        |pairs: &'static [(&'static str, &'static str)]| move |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string());
    assert!(colors_on(ColorChoice::Auto, true, &env(&[])));
    assert!(!colors_on(ColorChoice::Auto, false, &env(&[])));
    assert!(!colors_on(ColorChoice::Auto, true, &env(&[("NO_COLOR", "1")])));
    assert!(colors_on(ColorChoice::Auto, false, &env(&[("CLICOLOR_FORCE", "1")])));
    assert!(!colors_on(ColorChoice::Auto, false, &env(&[("CLICOLOR_FORCE", "0")])));
    assert!(!colors_on(ColorChoice::Auto, false, &env(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")])));
    assert!(colors_on(ColorChoice::Always, false, &env(&[("NO_COLOR", "1")])));
    assert!(!colors_on(ColorChoice::Never, true, &env(&[("CLICOLOR_FORCE", "1")])));
}

#[test]
fn every_argument_has_help_and_hidden_ones_are_not_completed() {
    let mut cli = Cli::command();
    cli.build();
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && !arg.is_hide_set() && arg.get_help().is_none() {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            if sub.get_name() != "help" {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
    }
    let mut missing = Vec::new();
    walk(&cli, "sandbox", &mut missing);
    assert!(missing.is_empty(), "arguments without help: {missing:?}");

    let candidates = |line: &[&str]| -> Vec<String> {
        let args: Vec<std::ffi::OsString> = line.iter().map(Into::into).collect();
        let index = args.len() - 1;
        clap_complete::engine::complete(&mut Cli::command(), args, index, None)
            .unwrap()
            .into_iter()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect()
    };
    let flags = candidates(&["sandbox", "run", "--"]);
    assert!(flags.contains(&"--name".to_string()) && flags.contains(&"--env".to_string()), "{flags:?}");
    assert!(!flags.iter().any(|f| f == "--background"), "{flags:?}");
    assert!(candidates(&["sandbox", "run", "--b"]).is_empty(), "no hidden flag, even as the only match");
    let profiles = candidates(&["sandbox", "run", "py"]);
    assert_eq!(profiles, ["python"], "the ready profiles, not files");
    let all = candidates(&["sandbox", "build", ""]);
    for name in ["shell", "python", "c-dev", "net"] {
        assert!(all.contains(&name.to_string()), "{all:?}");
    }
}

#[test]
fn serve_listens_on_loopback_unless_told_otherwise() {
    let Command::Serve(args) = parse(&["serve", "shell", "--names-from", "names.txt"]).unwrap().command else { panic!("not serve") };
    let listen: std::net::SocketAddr = args.listen.parse().unwrap();
    assert!(listen.ip().is_loopback(), "{listen}: the class is reachable only from this machine until --listen says otherwise");
    assert!(args.origins.is_empty() && !args.ssh_only);
}
