//! `supergroup-server`: flags, logging, bind, [`supergroup_server::serve`] until SIGINT/SIGTERM.

use clap::Parser;
use supergroup_server::cli::ServerArgs;

#[derive(Parser)]
#[command(name = "supergroup-server", version, about = "Reference server of the Super Group Chat protocol")]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    supergroup_server::init_tracing();
    let cli = Cli::parse();
    supergroup_server::run_process(&cli.server).await
}
