//! `supergroup-server`: flags, logging, bind, [`supergroup_server::serve`] until SIGINT/SIGTERM;
//! `supergroup-server openapi` prints the REST API's OpenAPI document instead.

use clap::{Parser, Subcommand};
use supergroup_server::cli::ServerArgs;

/// mimalloc instead of glibc's malloc: a connect storm of 10,000 guests spent
/// a fifth of the server's CPU in malloc/free (reference-server/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "supergroup-server", version, about = "Reference server of the Super Group Chat protocol")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print the OpenAPI 3.1 document of the REST API (what GET /openapi.json serves) and exit.
    Openapi,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        print!("{}", supergroup_server::routes::openapi::json());
        return Ok(());
    }
    supergroup_server::init_tracing(cli.server.log_format);
    supergroup_server::run_process(&cli.server).await
}
