//! Progress bars for long work (hidden automatically when standard error is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `total` items of `what`.
pub fn items(total: u64, what: &str) -> ProgressBar {
    bar(total, what, "{human_pos}/{human_len} {per_sec}")
}

/// A bar over `total` bytes of input.
pub fn bytes(total: u64, what: &str) -> ProgressBar {
    bar(total, what, "{bytes}/{total_bytes} {bytes_per_sec}")
}

fn bar(total: u64, what: &str, figures: &str) -> ProgressBar {
    let template = format!("{{msg:>10}} [{{bar:40}}] {figures} eta {{eta}}");
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template(&template).expect("template").progress_chars("=> "));
    bar.set_message(what.to_owned());
    bar
}
