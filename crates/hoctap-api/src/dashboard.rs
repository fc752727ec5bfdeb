//! The reviewers' web dashboard at `/`: one HTML page, its script and its stylesheet, built into the
//! binary (`include_str!`), with no CDN and no build step, so it works offline. The page reads the
//! same `/v1/…` routes as any program; the Vietnamese labels of the codes come from
//! `hoctap_report::labels_json`, written into the page when it is first served.

use crate::Failure;
use axum::extract::Path;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;

const PAGE: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/dashboard.js");
const STYLE: &str = include_str!("../assets/dashboard.css");
/// Where the page holds the labels (inside a `<script type="application/json">`).
const LABELS_SLOT: &str = "{/*LABELS*/}";

/// The page with the labels in place. The labels' JSON holds no `<`, so it cannot end the script
/// element early (checked by a test).
static INDEX: LazyLock<String> = LazyLock::new(|| PAGE.replacen(LABELS_SLOT, &hoctap_report::labels_json(), 1));

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static(content_type)), (CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        body,
    )
        .into_response()
}

pub(crate) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX.as_str())
}

pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub(crate) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /templates/{kind}.xlsx`: the empty template of a list a commune officer fills for `hoctap
/// import` (`hoctap_import::template_xlsx`), linked from the page.
pub(crate) async fn template(Path(file): Path<String>) -> Result<Response, Failure> {
    let kind = file.strip_suffix(".xlsx").and_then(hoctap_import::Kind::parse).ok_or_else(|| {
        let known: Vec<String> = hoctap_import::Kind::ALL.iter().map(|k| format!("{}.xlsx", k.as_str())).collect();
        Failure::NotFound(format!("no template `{file}`: there are {}", known.join(", ")))
    })?;
    let bytes = hoctap_import::template_xlsx(kind).map_err(|e| {
        tracing::error!(error = %e, "building a template");
        Failure::Internal
    })?;
    let disposition = format!("attachment; filename=\"hoctap-{}.xlsx\"", kind.as_str());
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static(XLSX)),
            (CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("an ASCII header")),
        ],
        bytes,
    )
        .into_response())
}

/// The media type of an XLSX workbook.
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_holds_the_labels_and_links_only_its_own_assets() {
        assert!(PAGE.contains(LABELS_SLOT));
        assert!(!INDEX.contains(LABELS_SLOT));
        assert!(INDEX.contains("Công dân học tập"), "the Vietnamese labels are in the page");
        assert!(!hoctap_report::labels_json().contains('<'));
        // The SVG namespace is a name, never fetched.
        let script = SCRIPT.replace("'http://www.w3.org/2000/svg'", "");
        for text in [PAGE, &script, STYLE] {
            assert!(!text.contains("http://") && !text.contains("https://"), "nothing is fetched from elsewhere");
        }
        assert!(PAGE.contains(r#"src="/dashboard.js""#) && PAGE.contains(r#"href="/dashboard.css""#));
    }
}
