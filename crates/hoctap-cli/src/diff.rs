//! `hoctap diff`: what changed in a review between two knowledge times, and the events recorded in
//! between that changed it (an audit of "what we reported" against "what we know now").

use crate::tracker::Tracker;
use anyhow::{Result, bail};
use hoctap_domain::Query;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The unit reviewed, e.g. `01` for Hà Nội.
    #[arg(long, required_unless_present = "approved")]
    scope: Option<String>,
    /// Valid date D (YYYY-MM-DD).
    #[arg(long, required_unless_present = "approved")]
    as_of: Option<String>,
    /// The first knowledge time K1: an RFC 3339 timestamp or a date (the end of that day, UTC+07:00).
    #[arg(long, required_unless_present = "approved")]
    known_at: Option<String>,
    /// Start from the review approved by this decision number (`hoctap approve`): its scope, date,
    /// milestone and frozen known-at are K1's question ("changed since the approved review").
    #[arg(long, conflicts_with_all = ["scope", "as_of", "known_at", "milestone"])]
    approved: Option<String>,
    /// The second knowledge time K2 (same forms as --known-at). Default: everything recorded now.
    #[arg(long)]
    vs: Option<String>,
    /// Milestone year of the targets compared (default: the review's own).
    #[arg(long)]
    milestone: Option<i32>,
    #[arg(long, value_enum, default_value_t = crate::ListFormat::Table)]
    format: crate::ListFormat,
    /// Figures of the table format: `summary` (the scope's own, with a count of the units' and the
    /// first ten events) or `all` (every unit's, the first fifty events). JSON always holds everything.
    #[arg(long, value_enum, default_value_t = crate::Units::Summary)]
    units: crate::Units,
}

pub fn run(data_dir: &Path, args: &DiffArgs) -> Result<ExitCode> {
    let vs = crate::known_at_arg(args.vs.as_deref())?;
    let mut tracker = Tracker::load(data_dir)?;
    let query = match &args.approved {
        Some(number) => tracker.engine.approval(number, None)?.query(),
        None => {
            let (Some(scope), Some(as_of)) = (&args.scope, &args.as_of) else {
                bail!("--scope, --as-of and --known-at are required (or --approved NUMBER)");
            };
            Query {
                scope: scope.clone(),
                as_of: crate::as_of_arg(as_of)?,
                known_at: crate::known_at_arg(args.known_at.as_deref())?,
                milestone: args.milestone,
            }
        }
    };
    let diff = tracker.engine.diff(&query, vs)?;
    let text = match args.format {
        crate::ListFormat::Table => hoctap_report::diff_table(&diff, args.units.rows()),
        crate::ListFormat::Json => hoctap_report::diff_json(&diff),
    };
    let printed = crate::print_out(text.trim_end());
    tracker.save_checkpoint();
    printed
}
