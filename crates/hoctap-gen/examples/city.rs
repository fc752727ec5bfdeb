//! Writes a synthetic city as NDJSON to stdout and its statistics to stderr:
//! `cargo run --release -p hoctap-gen --example city -- [citizens] [seed] > city.ndjson`.

use std::io::{BufWriter, Write};
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().expect("a number"));
    let config = hoctap_gen::Config::new(args.next().unwrap_or(20_000), args.next().unwrap_or(1));
    let started = Instant::now();
    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 20, stdout);
    let stats = hoctap_gen::write_ndjson(&config, &mut out)?;
    out.flush()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{stats:#?}");
    eprintln!(
        "{} events in {secs:.2} s: {:.0} events/s, {:.1} events per citizen",
        stats.events,
        stats.events as f64 / secs,
        stats.events as f64 / config.citizens.max(1) as f64
    );
    Ok(())
}
