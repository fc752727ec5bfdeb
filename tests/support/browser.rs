//! The dashboard in a real browser: Debian's `chromium`, driven over the DevTools Protocol
//! (headless_chrome). [`drive_dashboard`] is the walk-through both servers must pass (`hoctap serve` in
//! `tests/dashboard.rs`, `hoctap api` in the API's tests); it saves screenshots as PNG files.
//!
//! A missing chromium fails the test with the command that installs it: it is never skipped.

use headless_chrome::protocol::cdp::Page::{CaptureScreenshotFormatOption, Viewport};
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long the page may take to show an answer (a debug build, two busy cores).
const WAIT: Duration = Duration::from_secs(120);

/// The chromium binary: `HOCTAP_CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("HOCTAP_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "chromium is missing: the dashboard's tests drive a real browser. Install it with \
         `apt-get install -y chromium` (scripts/services.sh does it), or set HOCTAP_CHROMIUM to its path"
    );
}

/// Where screenshots go: `<target>/screenshots/` (beside the profile folder the test runs from).
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running test");
    let target = exe.ancestors().nth(3).expect("tests run from <target>/<profile>/deps/").to_owned();
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("creating the screenshots folder");
    dir
}

/// A headless chromium with one tab, 1360 × 2000 CSS pixels.
pub struct Page {
    // Dropping the browser ends the chromium process.
    _browser: Browser,
    pub tab: Arc<Tab>,
}

impl Page {
    pub fn open(url: &str) -> Page {
        let args: Vec<&OsStr> = vec![OsStr::new("--lang=vi-VN"), OsStr::new("--font-render-hinting=none")];
        let options = LaunchOptions {
            path: Some(chromium()),
            headless: true,
            // Tests run as root in CI, where chromium's sandbox cannot start.
            sandbox: false,
            window_size: Some((1360, 2000)),
            idle_browser_timeout: Duration::from_secs(600),
            args,
            ..LaunchOptions::default()
        };
        let browser = Browser::new(options).unwrap_or_else(|e| panic!("starting {}: {e}", chromium().display()));
        let tab = browser.new_tab().expect("a tab");
        tab.set_default_timeout(WAIT);
        tab.navigate_to(url).unwrap_or_else(|e| panic!("opening {url}: {e}"));
        tab.wait_until_navigated().expect("the page loads");
        Page { _browser: browser, tab }
    }

    /// The value of a JavaScript expression (a promise is awaited), as JSON.
    pub fn eval(&self, expression: &str) -> Value {
        let wrapped = format!("(async () => JSON.stringify(await ({expression})))()");
        let result = self.tab.evaluate(&wrapped, true).unwrap_or_else(|e| panic!("evaluating {expression}: {e}"));
        let text = result.value.and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| "null".into());
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{expression} gave no JSON ({e}): {text}"))
    }

    /// Waits until the page has drawn the answers for `as_of` (`body[data-state=ready]`), or fails
    /// with the page's error.
    pub fn wait_ready(&self, as_of: &str) {
        let selector = format!(r#"body[data-state="ready"][data-as-of="{as_of}"], body[data-state="error"]"#);
        self.tab.wait_for_element_with_custom_timeout(&selector, WAIT).unwrap_or_else(|e| {
            panic!("the dashboard did not show {as_of}: {e}; page state: {}", self.eval("document.body.dataset.state"))
        });
        let state = self.eval("document.body.dataset.state");
        assert_eq!(
            state,
            "ready",
            "the dashboard shows an error: {}",
            self.eval("document.querySelector('#error').textContent")
        );
    }

    /// Waits for an element to exist.
    pub fn wait_for(&self, selector: &str) {
        self.tab.wait_for_element_with_custom_timeout(selector, WAIT).unwrap_or_else(|e| panic!("{selector}: {e}"));
    }

    /// Clicks the element `selector` finds, as a user does (the mouse, at its centre).
    pub fn click(&self, selector: &str) {
        let element = self.tab.wait_for_element(selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
        element.click().unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
    }

    /// The whole window as a PNG file in [`screenshot_dir`].
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png =
            self.tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true).expect("a screenshot");
        save(name, &png, 10_000)
    }

    /// One element as a PNG file in [`screenshot_dir`].
    ///
    /// The element is scrolled to the top of the window first and clipped in page coordinates (what
    /// the protocol expects): an element below the first screen is drawn, not a blank area.
    pub fn screenshot_of(&self, selector: &str, name: &str) -> PathBuf {
        self.wait_for(selector);
        let quoted = serde_json::to_string(selector).expect("a string");
        let rect = self.eval(&format!(
            "(() => {{ const e = document.querySelector({quoted}); e.scrollIntoView(); \
             const r = e.getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; }})()"
        ));
        let n = |i: usize| rect[i].as_f64().unwrap_or_else(|| panic!("{selector}: no box ({rect})"));
        let clip = Viewport { x: n(0), y: n(1), width: n(2), height: n(3), scale: 1.0 };
        let png = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, Some(clip), true)
            .expect("a screenshot");
        self.eval("(() => { scrollTo(0, 0); return true; })()");
        save(name, &png, 1_000)
    }
}

/// Writes `png`, which must be a PNG of at least `min` bytes (a blank capture is smaller).
fn save(name: &str, png: &[u8], min: usize) -> PathBuf {
    assert!(png.starts_with(b"\x89PNG") && png.len() >= min, "{name}: not a PNG of a drawn page ({} bytes)", png.len());
    let path = screenshot_dir().join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    eprintln!("screenshot: {}", path.display());
    path
}

/// A displayed percentage (`52,35 %` in Vietnamese, `52.35 %` in English) as a number; `None` for `—`.
pub fn shown_percent(text: &str) -> Option<f64> {
    let t = text.trim().trim_end_matches('%').trim();
    if t == "—" {
        return None;
    }
    Some(t.replace('.', "").replace(',', ".").parse().unwrap_or_else(|e| panic!("`{text}` is not a percentage: {e}")))
}

/// The targets the page shows: (indicator, plan, actual as shown, status).
fn shown_targets(page: &Page) -> Vec<(String, String, Option<f64>, String)> {
    let rows = page.eval(
        "[...document.querySelectorAll('#targets tbody tr[data-indicator]')].map(r => \
         [r.dataset.indicator, r.dataset.plan, r.querySelector('td.actual').firstChild.textContent, r.dataset.status])",
    );
    rows.as_array()
        .expect("an array")
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().expect("a string").to_owned();
            (s(0), s(1), shown_percent(&s(2)), s(3))
        })
        .collect()
}

/// The review the page's own server answers for the question (fetched by the page, so the figures on
/// screen are compared with the API's document).
/// Types `token` into the page's token form and sends it.
fn enter_token(page: &Page, token: &str) {
    page.wait_for("#token-form:not([hidden]) #token");
    let quoted = serde_json::to_string(token).expect("a string");
    page.eval(&format!("document.querySelector('#token').value = {quoted}"));
    page.click("#token-form button[type=submit]");
}

/// What the server answers at `path`, asked from the page with the reader's token it keeps (if any).
fn api_get(page: &Page, path: &str) -> Value {
    page.eval(&format!(
        "fetch('{path}', {{ headers: sessionStorage.getItem('hoctap.token') \
         ? {{ Authorization: 'Bearer ' + sessionStorage.getItem('hoctap.token') }} : {{}} }}).then(r => r.json())"
    ))
}

/// The review the API gives.
fn api_review(page: &Page, scope: &str, as_of: &str) -> Value {
    api_get(page, &format!("/v1/reviews?scope={scope}&as_of={as_of}"))
}

/// Asserts the page's targets are the review's: every target, its status, its actual to two decimals.
fn assert_targets_shown(page: &Page, review: &Value) {
    let shown = shown_targets(page);
    let targets = review["targets"].as_array().expect("targets");
    assert!(!targets.is_empty(), "the review has targets to show");
    assert_eq!(shown.len(), targets.len(), "one row per target: {shown:?}");
    for (row, target) in shown.iter().zip(targets) {
        assert_eq!(row.0, target["indicator"].as_str().unwrap());
        assert_eq!(row.1, target["plan"].as_str().unwrap());
        assert_eq!(row.3, target["status"].as_str().unwrap());
        match (row.2, target["actual_percent"].as_f64()) {
            (None, None) => {}
            (Some(shown), Some(actual)) => assert!((shown - actual).abs() <= 0.005 + 1e-9, "{row:?} against {actual}"),
            other => panic!("{row:?}: shown and actual differ: {other:?}"),
        }
    }
}

/// Sets the date picker as a user would end an edit (value, then `change`), and waits for the page.
fn pick_date(page: &Page, as_of: &str) {
    page.eval(&format!(
        "(() => {{ const i = document.querySelector('#as-of'); i.value = '{as_of}'; \
         i.dispatchEvent(new Event('change', {{ bubbles: true }})); return true; }})()"
    ));
    page.wait_ready(as_of);
}

/// The walk-through of the dashboard at `base` (e.g. `http://127.0.0.1:8090`), whose data is a city
/// with province `01` and districts before 1 July 2025: the targets appear with the API's figures;
/// another date changes them; the charts are drawn; English; the units table sorts, filters and
/// drills down to communes; a unit's series is drawn. With `token`, the server has readers: the page
/// asks for a token, says a wrong one is wrong, and shows everything once `token` is typed.
/// Screenshots are named `<prefix>-….png`; returns the overview's and a chart's.
pub fn drive_dashboard(base: &str, prefix: &str, token: Option<&str>) -> (PathBuf, PathBuf) {
    let page = Page::open(&format!("{base}/"));
    if let Some(token) = token {
        // A server with readers: the page asks for a token; a wrong one is said to be wrong.
        page.wait_for(r#"body[data-state="token"]"#);
        enter_token(&page, "not-a-reader");
        page.wait_for(r#"body[data-state="token"] #token-wrong:not([hidden])"#);
        enter_token(&page, token);
    }
    page.wait_ready("2025-12-31");
    let heading = page.eval("document.querySelector('#targets th').textContent");
    assert_eq!(heading, "Chỉ tiêu", "Vietnamese first");

    // The phase review's targets, as the API gives them.
    let phase = api_review(&page, "01", "2025-12-31");
    assert_targets_shown(&page, &phase);
    let before = shown_targets(&page);
    assert!(before.iter().any(|t| t.2.is_some()), "some target has an actual share: {before:?}");

    // Completeness, as the review states it.
    let c = &phase["completeness"];
    let communes = c["communes"].as_u64().expect("the review states its completeness");
    let shown =
        page.eval("[...document.querySelectorAll('#completeness [data-gap] > strong')].map(s => s.textContent)");
    let expected = serde_json::json!([
        format!("{} / {communes}", c["silent"].as_array().unwrap().len()),
        format!("{} / {communes}", c["without_baseline"].as_array().unwrap().len()),
        c["targets_without_denominator"].as_array().unwrap().len().to_string(),
    ]);
    assert_eq!(shown, expected, "completeness");

    // The charts: one per indicator, each with the actual line and the 2030 target marked.
    page.wait_for("#charts figure.chart path.line");
    let charts = page.eval("[...document.querySelectorAll('#charts figure.chart')].map(f => f.dataset.indicator)");
    let indicators: std::collections::BTreeSet<&str> =
        phase["targets"].as_array().unwrap().iter().map(|t| t["indicator"].as_str().unwrap()).collect();
    assert_eq!(charts.as_array().unwrap().len(), indicators.len(), "{charts}");
    let marks = page.eval("document.querySelectorAll('#charts .goal-mark.y2030').length");
    assert!(marks.as_u64().unwrap() >= indicators.len() as u64, "every chart marks its 2030 target: {marks}");
    let overview = page.screenshot(&format!("{prefix}-overview.png"));
    let chart = page.screenshot_of("#charts figure.chart", &format!("{prefix}-chart.png"));

    // Another date: other figures, still the API's.
    pick_date(&page, "2023-12-31");
    let earlier = api_review(&page, "01", "2023-12-31");
    assert_targets_shown(&page, &earlier);
    let after = shown_targets(&page);
    assert_ne!(before, after, "changing the date changes the figures");
    assert_eq!(page.eval("new URLSearchParams(location.search).get('as_of')"), "2023-12-31");

    // The templates for `hoctap import`: three links, each an XLSX workbook (a ZIP: "PK").
    let links = page.eval("[...document.querySelectorAll('#templates a[download]')].map(a => a.getAttribute('href'))");
    assert_eq!(
        links,
        serde_json::json!([
            "/templates/registrations.xlsx",
            "/templates/recognitions.xlsx",
            "/templates/baselines.xlsx"
        ])
    );
    let magic = page.eval(
        "fetch('/templates/registrations.xlsx').then(r => r.arrayBuffer()).then(b => [...new Uint8Array(b).slice(0, 2)])",
    );
    assert_eq!(magic, serde_json::json!([80, 75]), "an XLSX workbook");

    // English.
    page.click(r#".lang button[data-lang="en"]"#);
    assert_eq!(page.eval("document.querySelector('#targets th').textContent"), "Indicator");
    assert_eq!(page.eval("document.documentElement.lang"), "en");
    page.click(r#".lang button[data-lang="vi"]"#);
    assert_eq!(page.eval("document.querySelector('#targets th').textContent"), "Chỉ tiêu");

    // The units table: the districts of 2023, sorted by recognised count (largest first) on a click.
    let districts = earlier["units"].as_array().unwrap().len() - 1;
    let rows = page.eval("document.querySelectorAll('#units tbody tr[data-level=\"district\"]').length");
    assert_eq!(rows.as_u64().unwrap() as usize, districts, "one row per district");
    page.click(r#"#units th[data-key="recognised"]"#);
    let recognised = page.eval(
        "[...document.querySelectorAll('#units tbody tr[data-level=\"district\"] td:nth-child(6)')]\
         .map(td => Number(td.textContent.replace(/\\./g, '')))",
    );
    let recognised: Vec<u64> = recognised.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert!(recognised.windows(2).all(|w| w[0] >= w[1]), "sorted, largest first: {recognised:?}");
    assert!(recognised.iter().any(|&n| n > 0), "{recognised:?}");
    page.screenshot_of("#units", &format!("{prefix}-units.png"));
    page.screenshot_of("#behind", &format!("{prefix}-behind.png"));
    page.screenshot_of("#completeness-card", &format!("{prefix}-completeness.png"));

    // Filter by name: the first district's name leaves it alone.
    let first = earlier["units"][1].clone();
    let name = first["name"].as_str().unwrap();
    page.eval(&format!(
        "(() => {{ const i = document.querySelector('#filter'); i.value = {}; i.dispatchEvent(new Event('input')); return true; }})()",
        serde_json::to_string(name).unwrap()
    ));
    let left = page.eval(
        "[...document.querySelectorAll('#units tbody tr[data-level=\"district\"]')].map(r => [r.dataset.code, r.cells[1].textContent])",
    );
    let left = left.as_array().unwrap();
    assert!(left.iter().any(|r| r[0] == first["code"]), "filtering by `{name}` keeps it: {left:?}");
    assert!(left.iter().all(|r| r[1].as_str().unwrap().contains(name)), "only names holding `{name}`: {left:?}");
    let others = earlier["units"].as_array().unwrap()[1..]
        .iter()
        .filter(|u| !u["name"].as_str().unwrap().contains(name))
        .count();
    assert_eq!(left.len(), districts - others, "filtering by `{name}`: {left:?}");

    // Drill down: the district's communes, then back to the city by the breadcrumb.
    let code = first["code"].as_str().unwrap();
    page.click(&format!(r#"#units tbody tr[data-code="{code}"] td:nth-child(2)"#));
    page.tab
        .wait_for_element_with_custom_timeout("#crumbs a", WAIT)
        .unwrap_or_else(|e| panic!("the breadcrumb after drilling into {code}: {e}"));
    page.wait_ready("2023-12-31");
    let district = api_review(&page, code, "2023-12-31");
    let communes =
        page.eval("[...document.querySelectorAll('#units tbody tr[data-level=\"commune\"]')].map(r => r.dataset.code)");
    let expected: Vec<&str> =
        district["units"].as_array().unwrap()[1..].iter().map(|u| u["code"].as_str().unwrap()).collect();
    let mut shown: Vec<&str> = communes.as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    shown.sort_unstable();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort_unstable();
    assert!(!shown.is_empty(), "the district has communes");
    assert_eq!(shown, expected_sorted, "the district's communes");

    // A commune's counts over time, from the series endpoint.
    // (The table is still sorted by recognised count: the first commune shown has the most.)
    page.click(r#"#units tbody tr[data-level="commune"] td:nth-child(1)"#);
    page.wait_for("#series svg path");
    page.screenshot_of("#series", &format!("{prefix}-series.png"));
    page.click("#crumbs a");
    page.wait_ready("2023-12-31");
    assert_eq!(page.eval("document.querySelectorAll('#crumbs a').length"), 0);
    (overview, chart)
}

/// Whether `path` is a PNG file of at least `min` bytes.
pub fn is_png(path: &Path, min: usize) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG") && b.len() >= min)
}

/// The approved review `number` on the dashboard at `base` (opened as `?approved=NUMBER`): the panel
/// "changed since the approval" shows the diff the server gives (`GET /v1/reviews/diff?approved=`):
/// each changed target, the first changed figures and their count, the first events when the server
/// lists them; choosing "latest" hides it. Returns the panel's screenshot `<prefix>-changes.png`.
pub fn drive_changes_since_approval(base: &str, number: &str, prefix: &str) -> PathBuf {
    let query: String = url_encoded(number);
    let page = Page::open(&format!("{base}/?approved={query}"));
    page.wait_for(r#"body[data-state="ready"] #changes-card:not([hidden])"#);
    let diff = api_get(&page, &format!("/v1/reviews/diff?approved={query}"));
    let figures = diff["figures"].as_array().expect("the diff's figures");
    assert!(!figures.is_empty(), "events were recorded after the approval: {diff}");
    let shown = page.eval("document.querySelectorAll('#changed-figures tbody tr').length").as_u64().unwrap() as usize;
    assert_eq!(shown, figures.len().min(15), "the first changed figures");
    let heading = page.eval("[...document.querySelectorAll('#changes h3')].map(h => h.textContent)");
    let count = figures.len().to_string();
    assert!(heading.as_array().unwrap().iter().any(|h| h.as_str().unwrap().ends_with(&count)), "{heading}");
    let targets = page.eval("document.querySelectorAll('#changed-targets tbody tr').length").as_u64().unwrap_or(0);
    assert_eq!(targets as usize, diff["targets"].as_array().unwrap().len(), "every changed target");
    let events = page.eval("document.querySelectorAll('#changes ul.events li').length").as_u64().unwrap() as usize;
    let listed = diff["events"].as_array().map_or(0, Vec::len);
    assert_eq!(events, listed.min(15), "the first events, when the server lists them");
    let shot = page.screenshot_of("#changes-card", &format!("{prefix}-changes.png"));
    // The latest data is not the approved review: no panel.
    page.eval(
        "(() => { const s = document.querySelector('#known-at'); s.value = ''; \
         s.dispatchEvent(new Event('change', { bubbles: true })); return true; })()",
    );
    page.wait_for(r#"body[data-state="ready"] #changes-card[hidden]"#);
    shot
}

/// `text` as a query-string value (UTF-8 percent-encoded).
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The form "approve this review" of a server that records approvals (`hoctap serve --approvals`),
/// used as a reviewer does on the phase review: it describes the review on screen with its exact
/// known-at; a number that already approves another review shows the server's refusal; a new number
/// records the approval, which the page then shows (the decision in the summary, the approved review
/// chosen in the known-at selector, no form). Returns the screenshots `<prefix>-approve-refused.png`
/// and `<prefix>-approve.png`.
pub fn drive_approval(base: &str, number: &str, prefix: &str) -> Vec<PathBuf> {
    let page = Page::open(&format!("{base}/?as_of=2025-12-31"));
    page.wait_ready("2025-12-31");
    page.wait_for("#approve-card:not([hidden])");
    let review = api_review(&page, "01", "2025-12-31");
    let what = page.eval("document.querySelector('#approve-what').textContent");
    let known_at = review["known_at"].as_str().expect("a review states its known-at");
    assert!(what.as_str().unwrap().contains(known_at), "the form names the review's known-at {known_at}: {what}");

    // A number taken by the review of another date (posted as a second reviewer would).
    let taken = format!("{number}-2024");
    let status = page.eval(&format!(
        "fetch('/v1/approvals', {{ method: 'POST', headers: {{ 'Content-Type': 'application/json' }}, \
         body: JSON.stringify({{ scope: '01', as_of: '2024-12-31', number: {taken:?}, issuer: 'UBND-01', \
         date: '2025-01-20' }}) }}).then(r => r.status)"
    ));
    assert_eq!(status, 201, "approving the review of 2024");
    let field = |selector: &str, text: &str| {
        page.eval(&format!("(() => {{ document.querySelector('{selector}').value = ''; return true; }})()"));
        let input = page.tab.wait_for_element(selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
        input.click().and_then(|i| i.type_into(text)).unwrap_or_else(|e| panic!("typing into {selector}: {e}"));
    };
    field("#approve-number", &taken);
    field("#approve-issuer", "UBND-01");
    page.click("#approve-form button[type=submit]");
    page.wait_for("#approve-result.error:not([hidden])");
    let refusal = page.eval("document.querySelector('#approve-result').textContent");
    assert!(refusal.as_str().unwrap().contains("approval_conflict"), "the server's refusal is shown: {refusal}");
    let refused = page.screenshot(&format!("{prefix}-approve-refused.png"));

    field("#approve-number", number);
    page.click("#approve-form button[type=submit]");
    page.wait_for(r#"body[data-state="ready"] .fact.approved"#);
    page.wait_for("#approve-result.done:not([hidden])");
    assert_eq!(page.eval("document.querySelector('#known-at').value"), format!("approved:{number}"));
    assert_eq!(page.eval("document.querySelector('#approve-card').hidden"), true, "an approved review offers no form");
    let shown = page.eval("document.querySelector('.fact.approved').textContent");
    assert!(shown.as_str().unwrap().contains(number), "{shown}");
    let approved = page.screenshot(&format!("{prefix}-approve.png"));
    vec![refused, approved]
}
