//! `supergroup-load`: parses the command line and runs the subcommand; the
//! exit code is 0 for a passing run, 1 when a threshold failed or `compare`
//! found a regression, 2 when the run could not be done, 3 when a run without
//! thresholds lost deliveries (its first line starts with `LOSSY`).

use clap::Parser;
use std::process::ExitCode;
use supergroup_load::cli::{Cli, Command};
use supergroup_load::report::tables::headline;

/// mimalloc instead of glibc's malloc, for the generator and for the server
/// it starts (`supergroup-load server`, this same binary): see the reference
/// server's main.rs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Server(args)) => {
            supergroup_server::init_tracing(args.log_format);
            match supergroup_server::run_process(&args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("supergroup-load server: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::Compare(args)) => match supergroup_load::compare::compare(&args) {
            Ok(c) => {
                println!("comparison written to {}", c.dir.join("compare.html").display());
                println!("{} regression(s) beyond {}%", c.regressions(), args.tolerance);
                if c.regressions() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
            }
            Err(e) => {
                eprintln!("supergroup-load compare: {e:#}");
                ExitCode::from(2)
            }
        },
        Some(Command::Worker(args)) => match supergroup_load::dist::worker::run(&args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("supergroup-load worker: {e:#}");
                ExitCode::from(2)
            }
        },
        Some(Command::Run(args)) => run(args).await,
        None => run(cli.run).await,
    }
}

async fn run(args: supergroup_load::cli::RunArgs) -> ExitCode {
    match supergroup_load::run::run(&args).await {
        Ok(outcome) => {
            let s = &outcome.summary;
            println!("{}", headline(s));
            if let Some(steps) = &s.steps {
                println!("{}", steps.verdict());
            }
            if s.errors.guest_limit_reached {
                println!("the server refused guests with guest_limit_reached: the run hit the guest limit");
            }
            for v in &s.thresholds {
                println!("  {v}");
            }
            println!("report: {}", outcome.written.html.display());
            println!("        {}", outcome.written.summary.display());
            if !s.passed {
                ExitCode::from(1)
            } else if s.lossy_unjudged() {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("supergroup-load: {e:#}");
            ExitCode::from(2)
        }
    }
}
