//! Run a simulated Kubernetes API server by hand: `kubesim --port 6443`, then point
//! `kubectl` at the kubeconfig path it prints.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use mcwan_kubesim::{KubeSim, SimConfig};

/// A stateful Kubernetes API test server on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "kubesim", version)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig (default: a file in the temporary directory).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Name of the kubeconfig context.
    #[arg(long, default_value = "kubesim")]
    context: String,
    /// Changes kept for watches; older resource versions get 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 5)]
    bookmark_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let config = SimConfig::default()
        .port(args.port)
        .history_limit(args.history)
        .bookmark_interval(Duration::from_secs(args.bookmark_seconds));
    let sim = KubeSim::start_with(config).await?;
    let path = args
        .kubeconfig
        .unwrap_or_else(|| std::env::temp_dir().join(format!("kubesim-{}.kubeconfig", sim.port())));
    sim.write_kubeconfig(&path, &args.context)?;
    println!("{}", path.display());
    eprintln!(
        "kubesim serving {}; try: kubectl --kubeconfig {} get ns",
        sim.url(),
        path.display()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sim.stop().await;
    Ok(())
}
