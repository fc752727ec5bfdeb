// The reviewers' dashboard: reads /v1/reviews, /v1/units, /v1/units/{code}/series and /v1/approvals
// and draws the page (tables, and charts as inline SVG). No library, no build step: served as is.
// Figures are never computed here but for display shares (a unit's count over its denominator, as the
// HTML report does); every rule lives in the server.
(() => {
  'use strict';

  const SVG = 'http://www.w3.org/2000/svg';
  const FIRST_YEAR = 2021;
  const LAST_YEAR = 2030;
  const VI = JSON.parse(document.getElementById('labels').textContent);
  const EN = {
    titles: {
      learning_citizen: 'Learning citizens', learning_family: 'Learning families', learning_clan: 'Learning clans',
      learning_community: 'Learning communities', learning_unit: 'Learning units', learning_commune: 'Learning communes',
      learning_district: 'Learning districts', learning_city: 'Learning city',
    },
    metrics: {
      adults: 'Adults', households: 'Households', clans: 'Clans', communities: 'Villages and residential groups',
      units: 'Agencies and units', unit_staff: 'Civil servants and public employees',
      adults_in_learning_models: 'Adults in learning models', districts: 'Districts', learning_citizen: 'Learning citizens',
    },
    groups: { resident: 'residents', worker: 'workers', staff: 'civil servants', student: 'students' },
    levels: { province: 'Province/city', district: 'District', commune: 'Commune/ward' },
    statuses: { met: 'Met', behind: 'Behind', no_denominator: 'No denominator', unit_abolished: 'Unit abolished' },
    digital_skill: 'Digital skills',
  };
  const TEXT = {
    vi: {
      app_title: 'Xã hội học tập', app_sub: 'Bảng theo dõi kết quả xây dựng xã hội học tập 2021–2030',
      token_hint: 'Máy chủ này chỉ trả lời người xem có mã truy cập (do đơn vị quản lý hệ thống cấp).',
      token: 'Mã truy cập', token_go: 'Xem', token_wrong: 'Mã truy cập không đúng.',
      as_of: 'Tính đến ngày', known_at: 'Dữ liệu ghi nhận đến', known_at_date: 'Ngày ghi nhận',
      now: 'Mới nhất (mọi dữ liệu đã ghi nhận)', pick_date: 'Chọn một ngày…', approved_opt: 'Đã phê duyệt',
      templates: 'Mẫu bảng tính nhập liệu', templates_hint: 'Cán bộ xã, phường điền mẫu (Excel) rồi nhập bằng lệnh hoctap import.',
      tpl_registrations: 'Đăng ký danh hiệu', tpl_recognitions: 'Công nhận danh hiệu', tpl_baselines: 'Số liệu nền (mẫu số)',
      changes: 'Thay đổi từ khi phê duyệt', changes_none: 'Không có số liệu nào thay đổi.',
      changes_known: 'Dữ liệu khi phê duyệt', changes_now: 'Dữ liệu hiện nay', events_word: 'sự kiện',
      changes_targets: 'Chỉ tiêu thay đổi', changes_figures: 'Số liệu thay đổi', changes_events: 'Sự kiện ghi nhận sau đó đã làm thay đổi số liệu',
      before: 'Khi phê duyệt', after: 'Hiện nay', change: 'Thay đổi', count_kind: 'Số liệu', more: 'và {n} dòng nữa (xem hoctap diff)',
      digital_skill_count: 'Kỹ năng số', baseline_count: 'Mẫu số',
      approve: 'Phê duyệt báo cáo này', decision_number: 'Số quyết định', decision_issuer: 'Cơ quan ban hành',
      decision_date: 'Ngày ký', approve_go: 'Ghi nhận phê duyệt',
      approve_what: 'Quyết định sẽ phê duyệt báo cáo của {scope} tính đến ngày {as_of}{milestone}, với dữ liệu ghi nhận đến {known_at} ({events} sự kiện). Về sau vẫn xem lại được đúng số liệu này.',
      approve_done: 'Đã ghi nhận quyết định {number}.', approve_again: 'Quyết định {number} đã được ghi nhận trước đây.',
      targets: 'Chỉ tiêu', indicator: 'Chỉ tiêu', plan: 'Kế hoạch', target: 'Mục tiêu', actual: 'Thực tế',
      progress: 'So với mục tiêu', gap: 'Chênh lệch', status: 'Trạng thái', milestone: 'mốc',
      charts: 'Diễn biến 2021–2030', charts_hint: 'Tỷ lệ vào cuối mỗi năm; đường đứt: mục tiêu 2025 và 2030; vạch dọc: ngày đang xem.',
      units: 'Đơn vị', title: 'Danh hiệu', filter: 'Lọc', filter_ph: 'tên hoặc mã', code: 'Mã', name: 'Tên',
      registered: 'Đăng ký', declared: 'Kê khai', evidenced: 'Minh chứng', recognised: 'Công nhận',
      baseline: 'Mẫu số', share: '% công nhận', behind: 'Đơn vị xa mục tiêu nhất',
      completeness: 'Mức đầy đủ của dữ liệu', scope: 'Đơn vị đánh giá', events: 'Sự kiện đã tính',
      geography: 'Địa giới', districts: 'quận/huyện', communes: 'phường/xã', known: 'Dữ liệu đến',
      approved_by: 'Đã phê duyệt theo', no_targets: 'Không có chỉ tiêu cho đơn vị này vào ngày đã chọn.',
      no_units: 'Không có đơn vị nào khớp.', no_behind: 'Không có đơn vị nào có mẫu số cho các chỉ tiêu này.',
      generated: 'Tạo bởi', at: 'lúc', loading: 'Đang tải…', series_of: 'Số lượng theo tháng',
      reform_note: 'Đơn vị này không còn hiệu lực vào ngày đã chọn; số liệu là của các đơn vị kế thừa.',
      without_denominator: 'đơn vị chưa có mẫu số', of_target: 'mục tiêu', met_count: 'đạt', behind_count: 'chưa đạt',
      no_data: 'chưa có số liệu', cycle: 'chu kỳ',
      silent_n: 'phường/xã chưa có đăng ký, kê khai hay minh chứng nào trong chu kỳ',
      no_baseline_n: 'phường/xã thiếu mẫu số cho các chỉ tiêu',
      no_denominator_n: 'chỉ tiêu thiếu mẫu số',
    },
    en: {
      app_title: 'Learning society', app_sub: 'Progress towards the learning-society targets, 2021–2030',
      token_hint: 'This server answers readers with an access token only (issued by the system\'s operator).',
      token: 'Access token', token_go: 'Open', token_wrong: 'That access token is not valid.',
      as_of: 'As of', known_at: 'As known at', known_at_date: 'Known at (date)',
      now: 'Latest (everything recorded)', pick_date: 'Pick a date…', approved_opt: 'Approved',
      templates: 'Spreadsheet templates for data entry', templates_hint: 'Commune officers fill a template (Excel), then load it with hoctap import.',
      tpl_registrations: 'Registrations', tpl_recognitions: 'Recognitions', tpl_baselines: 'Baselines (denominators)',
      changes: 'Changed since the approval', changes_none: 'No figure has changed.',
      changes_known: 'Data at the approval', changes_now: 'Data now', events_word: 'events',
      changes_targets: 'Targets that changed', changes_figures: 'Figures that changed', changes_events: 'Events recorded since that changed the figures',
      before: 'At the approval', after: 'Now', change: 'Change', count_kind: 'Figure', more: 'and {n} more rows (see hoctap diff)',
      digital_skill_count: 'Digital skills', baseline_count: 'Denominator',
      approve: 'Approve this review', decision_number: 'Decision number', decision_issuer: 'Issued by',
      decision_date: 'Signed on', approve_go: 'Record the approval',
      approve_what: 'The decision will approve the review of {scope} as of {as_of}{milestone}, with the data known at {known_at} ({events} events). These figures stay reproducible afterwards.',
      approve_done: 'Decision {number} recorded.', approve_again: 'Decision {number} was recorded already.',
      targets: 'Targets', indicator: 'Indicator', plan: 'Plan', target: 'Target', actual: 'Actual',
      progress: 'Against the target', gap: 'Gap', status: 'Status', milestone: 'milestone',
      charts: 'Trends 2021–2030', charts_hint: 'Share at each year end; dashed: the 2025 and 2030 targets; vertical line: the date shown.',
      units: 'Units', title: 'Title', filter: 'Filter', filter_ph: 'name or code', code: 'Code', name: 'Name',
      registered: 'Registered', declared: 'Declared', evidenced: 'Evidenced', recognised: 'Recognised',
      baseline: 'Denominator', share: '% recognised', behind: 'Units furthest behind',
      completeness: 'Completeness of the data', scope: 'Unit reviewed', events: 'Events counted',
      geography: 'Geography', districts: 'districts', communes: 'communes', known: 'Known at',
      approved_by: 'Approved by', no_targets: 'No targets for this unit on the chosen date.',
      no_units: 'No unit matches.', no_behind: 'No unit has a denominator for these targets.',
      generated: 'Generated by', at: 'at', loading: 'Loading…', series_of: 'Counts by month',
      reform_note: 'This unit is not in force on the chosen date; the figures are its successors\'.',
      without_denominator: 'units without a denominator', of_target: 'target', met_count: 'met', behind_count: 'behind',
      no_data: 'no figures yet', cycle: 'cycle',
      silent_n: 'communes with no registration, declaration or evidence in the cycle',
      no_baseline_n: 'communes without a denominator the targets need',
      no_denominator_n: 'targets without a denominator',
    },
  };
  /// The denominator a title's recognised count is read against (as the HTML report).
  const TITLE_BASELINE = {
    learning_citizen: 'adults', learning_family: 'households', learning_clan: 'clans',
    learning_community: 'communities', learning_unit: 'units',
  };
  const COUNTS = ['registered', 'declared', 'evidenced', 'recognised'];
  const SERIES_COLOURS = { registered: '#9aa5b1', declared: '#d69e2e', evidenced: '#3182ce', recognised: '#1e7b34' };

  const params = new URLSearchParams(location.search);
  const state = {
    lang: params.get('lang') === 'en' ? 'en' : (localStorage.getItem('hoctap.lang') || 'vi'),
    path: [], // the scopes drilled into, from the city down: [{code, name}]
    asOf: params.get('as_of') || '2025-12-31',
    known: params.get('approved') ? 'approved:' + params.get('approved') : (params.get('known_at') ? 'date' : ''),
    knownDate: params.get('known_at') || '',
    approvals: [],
    canApprove: false,
    title: 'learning_citizen',
    sort: { key: null, dir: 1 },
    filter: '',
    review: null,
    picked: null,
    generation: 0,
  };
  if (params.get('scope')) state.path = [{ code: params.get('scope'), name: params.get('scope') }];

  const $ = (sel) => document.querySelector(sel);
  const t = (key) => TEXT[state.lang][key] ?? TEXT.vi[key] ?? key;
  const words = () => (state.lang === 'en' ? EN : VI);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
    return node;
  };
  const svg = (tag, attrs = {}, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };

  // Numbers: Vietnamese style (2.480.000 and 52,35) or English; two decimals, halves away from zero.
  const locale = () => (state.lang === 'en' ? 'en-GB' : 'vi-VN');
  const fmtInt = (n) => (n === null || n === undefined ? '—' : new Intl.NumberFormat(locale()).format(n));
  const fmtPct = (p, digits = 2) =>
    p === null || p === undefined || !Number.isFinite(p)
      ? '—'
      : new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(p) + ' %';
  const fmtGap = (g) => (g === null || g === undefined ? '—' : (g > 0 ? '+' : '') + fmtPct(g).replace(' %', ''));

  // Names of codes.
  const titleName = (code) => words().titles[code] ?? (code === 'digital_skill' ? words().digital_skill : code);
  const indicatorName = (indicator) => {
    const [left, metric] = indicator.split('/');
    const [title, group] = left.split(':');
    let name = titleName(title);
    if (group) name += ` (${words().groups[group] ?? group})`;
    return `${name} / ${words().metrics[metric] ?? metric}`;
  };
  const planName = (plan) => {
    const parts = plan.split('/');
    if (parts.length < 3) return plan;
    const issuer = parts[0];
    const year = parts[parts.length - 1];
    const number = parts.slice(1, -1).join('/');
    if (issuer === 'TTg') return `${state.lang === 'en' ? 'Decision' : 'Quyết định'} ${number}/QĐ-TTg (${year})`;
    if (issuer.startsWith('UBND')) return `${state.lang === 'en' ? 'Plan' : 'Kế hoạch'} ${number}/KH-UBND (${year})`;
    return `${issuer} ${number} (${year})`;
  };
  const levelName = (level) => words().levels[level] ?? level;
  const statusName = (status) => words().statuses[status] ?? status;

  // A reader's token, asked for when the server answers 401 (`hoctap api --readers`); kept for the tab.
  const TOKEN = 'hoctap.token';
  async function request(url, init = {}) {
    const headers = { Accept: 'application/json', ...(init.headers || {}) };
    const token = sessionStorage.getItem(TOKEN);
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(url, { ...init, headers });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(body.error || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return { body, response };
  }
  const getJson = async (url) => (await request(url)).body;

  // What the controls ask: known-at as a query parameter, or an approved review.
  const approval = () =>
    state.known.startsWith('approved:') ? state.approvals.find((a) => 'approved:' + a.number === state.known) : null;
  const knownParam = () => {
    const a = approval();
    if (a) return a.known_at;
    if (state.known === 'date' && state.knownDate) return state.knownDate;
    return null;
  };
  const scope = () => state.path[state.path.length - 1]?.code;

  function reviewUrl(code, asOf, milestone) {
    const a = approval();
    // The approved review itself where it is asked; elsewhere the same instant (the same figures).
    if (a && code === a.scope && asOf === a.as_of && milestone === undefined) {
      return `/v1/reviews?approved=${encodeURIComponent(a.number)}`;
    }
    const q = new URLSearchParams({ scope: code, as_of: asOf });
    const k = knownParam();
    if (k) q.set('known_at', k);
    if (milestone !== undefined) q.set('milestone', String(milestone));
    return '/v1/reviews?' + q;
  }

  function remember() {
    const q = new URLSearchParams();
    if (scope()) q.set('scope', scope());
    q.set('as_of', state.asOf);
    const a = approval();
    if (a) q.set('approved', a.number);
    else if (state.known === 'date' && state.knownDate) q.set('known_at', state.knownDate);
    if (state.lang === 'en') q.set('lang', 'en');
    history.replaceState(null, '', '?' + q);
  }

  // The city reviewed by default: the province in force on the date (Hà Nội when there are several).
  async function rootScope() {
    const q = new URLSearchParams({ as_of: state.asOf });
    const k = knownParam();
    if (k) q.set('known_at', k);
    const list = await getJson('/v1/units?' + q);
    const provinces = list.units.filter((u) => u.in_force && u.level === 'province');
    const root = provinces.find((u) => u.code === '01') ?? provinces[0];
    if (!root) throw new Error(state.lang === 'en' ? 'No province is in force on that date.' : 'Không có tỉnh/thành phố nào có hiệu lực vào ngày này.');
    return { code: root.code, name: root.name };
  }

  async function load() {
    const generation = ++state.generation;
    document.body.dataset.state = 'loading';
    $('#error').hidden = true;
    try {
      if (state.path.length === 0) state.path = [await rootScope()];
      const review = await getJson(reviewUrl(scope(), state.asOf));
      if (generation !== state.generation) return;
      state.review = review;
      state.diff = null;
      const top = review.units.find((u) => u.code === review.scope);
      if (top) state.path[state.path.length - 1].name = top.name;
      remember();
      render();
      await drawCharts(generation);
      if (generation !== state.generation) return;
      await drawChanges(generation);
      if (generation !== state.generation) return;
      document.body.dataset.asOf = review.as_of;
      document.body.dataset.state = 'ready';
    } catch (e) {
      if (generation !== state.generation) return;
      if (e.status === 401) return askToken();
      $('#error').textContent = e.message;
      $('#error').hidden = false;
      document.body.dataset.state = 'error';
    }
  }

  function render() {
    applyText();
    renderCrumbs();
    renderSummary();
    renderTargets();
    renderTitleChoice();
    renderUnits();
    renderBehind();
    renderCompleteness();
    renderChanges();
    renderApprove();
    renderStamp();
  }

  function applyText() {
    document.documentElement.lang = state.lang;
    document.title = `${t('app_title')} — ${state.path[0]?.name ?? ''}`;
    for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll('[data-i18n-placeholder]')) node.placeholder = t(node.dataset.i18nPlaceholder);
    for (const b of document.querySelectorAll('.lang button')) b.setAttribute('aria-pressed', String(b.dataset.lang === state.lang));
    renderKnownChoice();
  }

  function renderKnownChoice() {
    const select = $('#known-at');
    select.replaceChildren(
      el('option', { value: '', text: t('now') }),
      ...state.approvals.map((a) =>
        el('option', {
          value: 'approved:' + a.number,
          text: `${t('approved_opt')}: ${a.number} (${a.issuer}, ${a.date}) — ${a.scope} @ ${a.as_of}`,
        }),
      ),
      el('option', { value: 'date', text: t('pick_date') }),
    );
    select.value = state.known;
    $('#known-date-label').hidden = state.known !== 'date';
    $('#known-date').value = state.knownDate;
  }

  function renderCrumbs() {
    const nav = $('#crumbs');
    nav.replaceChildren();
    state.path.forEach((p, i) => {
      if (i > 0) nav.append(el('span', { class: 'sep', text: '›' }));
      if (i === state.path.length - 1) nav.append(el('strong', { text: `${p.name} (${p.code})` }));
      else nav.append(el('a', { text: p.name, onclick: () => { state.path = state.path.slice(0, i + 1); resetUnitView(); load(); } }));
    });
  }

  function fact(key, value, extra, cls, tip) {
    return el('div', { class: 'fact' + (cls ? ' ' + cls : ''), title: tip }, el('div', { class: 'k', text: key }), el('div', { class: 'v' }, value, extra ? el('small', { text: ' ' + extra }) : null));
  }

  function renderSummary() {
    const r = state.review;
    const top = r.units.find((u) => u.code === r.scope);
    const targets = r.targets;
    const met = targets.filter((x) => x.status === 'met').length;
    const behind = targets.filter((x) => x.status === 'behind').length;
    // The exact instant is in the tooltip and the address; the card shows it to the second.
    const known = r.known_at ? r.known_at.replace('T', ' ').replace(/\.\d+/, '').replace('Z', ' UTC') : '—';
    const items = [
      fact(t('scope'), top ? top.name : r.scope, top ? `${levelName(top.level)} · ${r.scope}` : ''),
      fact(t('as_of'), r.as_of),
      fact(t('known'), known, '', null, r.known_at),
      fact(t('events'), fmtInt(r.events)),
      fact(t('geography'), `${fmtInt(r.geography.districts)} ${t('districts')}`, `${fmtInt(r.geography.communes)} ${t('communes')}`),
      fact(t('targets'), `${met} ${t('met_count')}`, `${behind} ${t('behind_count')} / ${targets.length}`),
    ];
    if (r.approved) items.push(fact(t('approved_by'), r.approved.number, `${r.approved.issuer}, ${r.approved.date}`, 'approved'));
    if (r.reform) items.push(fact('⚠', t('reform_note'), '', 'warn'));
    $('#summary').replaceChildren(...items);
  }

  function meter(target) {
    const scale = Math.max(100, target.target_percent, target.actual_percent ?? 0);
    const box = el('div', { class: 'meter', title: `${fmtPct(target.actual_percent)} / ${fmtPct(target.target_percent)}` });
    if (target.actual_percent !== null) {
      box.append(el('div', { class: 'fill ' + (target.status === 'met' ? 'met' : 'behind'), style: `width:${(100 * target.actual_percent) / scale}%` }));
    }
    box.append(el('div', { class: 'mark', style: `left:${(100 * target.target_percent) / scale}%` }));
    return box;
  }

  function renderTargets() {
    const r = state.review;
    $('#milestone').textContent = r.milestone ? `(${t('milestone')} ${r.milestone})` : '';
    const body = $('#targets tbody');
    body.replaceChildren();
    if (r.targets.length === 0) {
      body.append(el('tr', {}, el('td', { colspan: 7, class: 'empty', text: t('no_targets') })));
      return;
    }
    for (const x of r.targets) {
      body.append(
        el('tr', { 'data-indicator': x.indicator, 'data-plan': x.plan, 'data-status': x.status },
          el('td', { class: 'ind' }, indicatorName(x.indicator), el('span', { class: 'code', text: x.indicator })),
          el('td', { class: 'plan' }, planName(x.plan), el('span', { class: 'code', text: x.plan })),
          el('td', { class: 'num target', text: fmtPct(x.target_percent) }),
          el('td', { class: 'num actual', text: fmtPct(x.actual_percent) },
            el('span', { class: 'code', text: `${fmtInt(x.numerator)} / ${fmtInt(x.denominator)}` })),
          el('td', {}, meter(x)),
          el('td', { class: 'num', text: fmtGap(x.gap_points) }),
          el('td', {}, el('span', { class: 'badge ' + x.status, text: statusName(x.status) })),
        ),
      );
    }
  }

  // "Changed since the approved review": shown when the approved review itself is on screen.
  const CHANGES_SHOWN = 15;
  async function drawChanges(generation) {
    const card = $('#changes-card');
    const a = approval();
    if (!a || scope() !== a.scope || state.asOf !== a.as_of) {
      card.hidden = true;
      return;
    }
    const diff = await getJson(`/v1/reviews/diff?approved=${encodeURIComponent(a.number)}`);
    if (generation !== state.generation) return;
    state.diff = diff;
    renderChanges();
  }

  function renderChanges() {
    const card = $('#changes-card');
    const diff = state.diff;
    const a = approval();
    if (!diff || !a) {
      card.hidden = true;
      return;
    }
    card.hidden = false;
    const knownText = (k) => `${k.known_at ?? '—'} (${fmtInt(k.events)} ${t('events_word')})`;
    const parts = [
      el('p', { class: 'hint' }, `${t('approved_opt')}: ${a.number} (${a.issuer}, ${a.date}). `,
        `${t('changes_known')}: ${knownText(diff.before)}; ${t('changes_now')}: ${knownText(diff.after)}.`),
    ];
    if (diff.targets.length === 0 && diff.figures.length === 0) {
      parts.push(el('p', { class: 'empty', text: t('changes_none') }));
    }
    if (diff.targets.length > 0) {
      const side = (x) => (x ? `${fmtPct(x.actual_percent)} — ${statusName(x.status)}` : '—');
      parts.push(el('h3', { text: t('changes_targets') }), el('table', { class: 'grid', id: 'changed-targets' },
        el('thead', {}, el('tr', {}, ...['indicator', 'plan', 'before', 'after'].map((k) => el('th', { text: t(k) })))),
        el('tbody', {}, ...diff.targets.map((x) => el('tr', { 'data-indicator': x.indicator },
          el('td', { text: indicatorName(x.indicator) }), el('td', { text: planName(x.plan) }),
          el('td', { text: side(x.before) }), el('td', { text: side(x.after) }))))));
    }
    if (diff.figures.length > 0) {
      const kind = (f) => (f.count === 'digital_skill' ? t('digital_skill_count')
        : f.count === 'baseline' ? `${t('baseline_count')}: ${words().metrics[f.metric] ?? f.metric}`
        : `${titleName(f.title)}: ${t(f.count)}`);
      const rows = diff.figures.slice(0, CHANGES_SHOWN).map((f) => el('tr', {},
        el('td', { text: `${f.name} (${f.unit})` }), el('td', { text: kind(f) }),
        el('td', { class: 'num', text: fmtInt(f.before) }), el('td', { class: 'num', text: fmtInt(f.after) }),
        el('td', { class: 'num', text: ((f.after ?? 0) - (f.before ?? 0) > 0 ? '+' : '') + fmtInt((f.after ?? 0) - (f.before ?? 0)) })));
      parts.push(el('h3', { text: `${t('changes_figures')}: ${fmtInt(diff.figures.length)}` }), el('table', { class: 'grid', id: 'changed-figures' },
        el('thead', {}, el('tr', {}, ...['units', 'count_kind', 'before', 'after', 'change'].map((k) => el('th', { text: t(k) })))),
        el('tbody', {}, ...rows)));
      if (diff.figures.length > CHANGES_SHOWN) parts.push(el('p', { class: 'hint', text: t('more').replace('{n}', fmtInt(diff.figures.length - CHANGES_SHOWN)) }));
    }
    if (diff.events && diff.events.length > 0) {
      parts.push(el('h3', { text: `${t('changes_events')}: ${fmtInt(diff.events.length)}` }), el('ul', { class: 'events' },
        ...diff.events.slice(0, CHANGES_SHOWN).map((e) => el('li', {}, el('code', { text: e.recordedtime }), ` ${e.type} — ${e.subject} (${e.source})`))));
    }
    $('#changes').replaceChildren(...parts);
  }

  function renderTitleChoice() {
    const present = new Set(['learning_citizen']);
    for (const u of state.review.units) for (const k of Object.keys(u.titles)) present.add(k);
    const titles = Object.keys(VI.titles).filter((k) => present.has(k));
    if (!present.has(state.title)) state.title = 'learning_citizen';
    $('#title').replaceChildren(...titles.map((k) => el('option', { value: k, text: titleName(k) })));
    $('#title').value = state.title;
  }

  function unitRow(u) {
    const counts = u.titles[state.title] ?? { registered: 0, declared: 0, evidenced: 0, recognised: 0 };
    const metric = TITLE_BASELINE[state.title];
    const baseline = metric ? u.baselines[metric] ?? null : null;
    const share = baseline ? (100 * counts.recognised) / baseline : null;
    return { unit: u, code: u.code, name: u.name, ...counts, baseline, share };
  }

  function renderUnits() {
    const r = state.review;
    const scopeCode = r.scope;
    $('#units-of').textContent = `— ${state.path[state.path.length - 1]?.name ?? ''}`;
    const needle = state.filter.trim().toLowerCase();
    let rows = r.units.filter((u) => u.code !== scopeCode).map(unitRow);
    if (needle) rows = rows.filter((x) => x.name.toLowerCase().includes(needle) || x.code.includes(needle));
    const { key, dir } = state.sort;
    if (key) {
      rows.sort((a, b) => {
        const va = a[key];
        const vb = b[key];
        if (va === null && vb === null) return 0;
        if (va === null) return 1; // missing figures last, whichever the direction
        if (vb === null) return -1;
        return (typeof va === 'string' ? va.localeCompare(vb, 'vi') : va - vb) * dir;
      });
    }
    for (const th of document.querySelectorAll('#units th[data-key]')) {
      th.classList.toggle('asc', th.dataset.key === key && dir === 1);
      th.classList.toggle('desc', th.dataset.key === key && dir === -1);
    }
    const body = $('#units tbody');
    body.replaceChildren();
    const scopeRow = r.units.find((u) => u.code === scopeCode);
    if (scopeRow) body.append(tableRow(unitRow(scopeRow), 'scope'));
    if (rows.length === 0) body.append(el('tr', {}, el('td', { colspan: 8, class: 'empty', text: t('no_units') })));
    for (const x of rows) body.append(tableRow(x, x.unit.level !== 'commune' ? 'drill' : ''));
  }

  function tableRow(x, cls) {
    const row = el('tr', { class: cls + (state.picked === x.code ? ' picked' : ''), 'data-code': x.code, 'data-level': x.unit.level },
      el('td', { text: x.code }),
      el('td', { text: x.name, title: levelName(x.unit.level) }),
      ...COUNTS.map((k) => el('td', { class: 'num', text: fmtInt(x[k]) })),
      el('td', { class: 'num', text: fmtInt(x.baseline) }),
      el('td', { class: 'num share', text: fmtPct(x.share) }),
    );
    row.addEventListener('click', (event) => {
      if (cls === 'drill' && event.target.cellIndex === 1) {
        state.path.push({ code: x.code, name: x.name });
        resetUnitView();
        load();
      } else {
        state.picked = x.code;
        renderUnits();
        drawSeries(x.code, x.name);
      }
    });
    return row;
  }

  function resetUnitView() {
    state.picked = null;
    state.filter = '';
    $('#filter').value = '';
    $('#series').hidden = true;
  }

  // A unit's share for an indicator, where the review's units hold both figures: `<title>/<metric>`
  // (recognised ÷ baseline) and `digital_skill/<metric>`. Group and cross-title indicators are not
  // per unit in a review: those targets list no units.
  function unitShare(u, indicator) {
    const [left, metric] = indicator.split('/');
    if (left.includes(':')) return undefined;
    const baseline = u.baselines[metric];
    let count;
    if (left === 'digital_skill') {
      if (!(metric in VI.metrics) || metric === 'learning_citizen') return undefined;
      count = u.digital_skill;
    } else if (left in TITLE_BASELINE || left === 'learning_city') {
      count = u.titles[left]?.recognised ?? 0;
    } else return undefined;
    if (!baseline) return null;
    return (100 * count) / baseline;
  }

  function renderBehind() {
    const r = state.review;
    const children = r.units.filter((u) => u.code !== r.scope);
    const seen = new Set();
    const boxes = [];
    for (const x of r.targets) {
      const key = x.indicator + '|' + x.target_percent;
      if (seen.has(key)) continue;
      seen.add(key);
      const shares = children.map((u) => ({ u, share: unitShare(u, x.indicator) }));
      if (shares.every((s) => s.share === undefined) || children.length === 0) continue;
      const known = shares.filter((s) => s.share !== null && s.share !== undefined).sort((a, b) => a.share - b.share);
      const missing = shares.filter((s) => s.share === null).length;
      const list = el('ol', {}, ...known.slice(0, 5).map((s) =>
        el('li', {}, el('span', { text: s.u.name }), el('span', { class: 'v', text: `${fmtPct(s.share)} (${fmtGap(s.share - x.target_percent)})` }))));
      boxes.push(el('div', { class: 'box', 'data-indicator': x.indicator },
        el('h3', {}, indicatorName(x.indicator), el('small', { text: ` — ${t('of_target')} ${fmtPct(x.target_percent)}` })),
        known.length ? list : el('p', { class: 'empty', text: t('no_behind') }),
        missing ? el('p', { class: 'hint', text: `${missing} ${t('without_denominator')}` }) : null));
    }
    $('#behind').replaceChildren(...(boxes.length ? boxes : [el('p', { class: 'empty', text: t('no_behind') })]));
  }

  // What the figures lack, as the review states it (`completeness`, computed by the server).
  function renderCompleteness() {
    const c = state.review.completeness;
    $('#completeness-card').hidden = !c;
    if (!c) return;
    const names = (list, max = 24) => {
      const shown = list.slice(0, max).map((u) => `${u.name} (${u.code})`).join(', ');
      return list.length > max ? `${shown}, … (+${list.length - max})` : shown;
    };
    const line = (key, count, detail, cls) =>
      el('div', { class: 'gap-line ' + (count ? cls : 'ok'), 'data-gap': key },
        el('strong', { text: `${count} / ${c.communes}` }), ' ', t(key + '_n'),
        count ? el('div', { class: 'names', text: detail }) : null);
    const missing = c.without_baseline.map((u) => ({ ...u, name: `${u.name}: ${u.metrics.map((m) => words().metrics[m] ?? m).join(', ')}` }));
    $('#completeness').replaceChildren(
      line('silent', c.silent.length, names(c.silent), 'warn'),
      line('no_baseline', c.without_baseline.length, names(missing, 12), 'warn'),
      el('div', { class: 'gap-line ' + (c.targets_without_denominator.length ? 'bad' : 'ok'), 'data-gap': 'targets' },
        el('strong', { text: String(c.targets_without_denominator.length) }), ' ', t('no_denominator_n'),
        c.targets_without_denominator.length
          ? el('div', { class: 'names', text: c.targets_without_denominator.map((x) => `${indicatorName(x.indicator)} — ${planName(x.plan)}`).join('; ') })
          : null),
    );
    $('#completeness-card h2').textContent = `${t('completeness')} (${t('cycle')} ${c.cycle_year})`;
  }

  function renderStamp() {
    const r = state.review;
    $('#stamp').textContent = r.software ? `${t('generated')} ${r.software} ${t('at')} ${r.generated_at}` : '';
  }

  // Charts: each indicator's actual share at every year end of the campaign, as known at the chosen
  // instant, with the 2025 and 2030 targets. One review a year, cached per scope and known-at.
  const yearCache = new Map();
  async function yearReviews(code) {
    const key = `${code}|${knownParam() ?? ''}`;
    if (!yearCache.has(key)) {
      const years = [];
      for (let y = FIRST_YEAR; y <= LAST_YEAR; y++) years.push(y);
      const ask = (asOf, milestone) => getJson(reviewUrl(code, asOf, milestone)).catch(() => null);
      yearCache.set(key, Promise.all([
        Promise.all(years.map((y) => ask(`${y}-12-31`, 2030))),
        ask('2025-12-31', 2025),
      ]).then(([byYear, phase]) => ({ years, byYear, phase })));
    }
    return yearCache.get(key);
  }

  async function drawCharts(generation) {
    const box = $('#charts');
    const r = state.review;
    const indicators = [...new Set(r.targets.map((x) => x.indicator))];
    if (indicators.length === 0) {
      box.replaceChildren(el('p', { class: 'empty', text: t('no_targets') }));
      return;
    }
    const data = await yearReviews(r.scope);
    if (generation !== state.generation) return;
    box.replaceChildren(...indicators.map((indicator) => chart(indicator, data)));
  }

  function goals(indicator, data) {
    const out = [];
    const add = (review, year) => {
      if (!review) return;
      for (const x of review.targets) {
        if (x.indicator === indicator && x.milestone === year && !out.some((g) => g.year === year && g.percent === x.target_percent)) {
          out.push({ year, percent: x.target_percent, plan: x.plan });
        }
      }
    };
    add(data.phase, 2025);
    add(data.byYear[data.byYear.length - 1], 2030);
    return out;
  }

  function chart(indicator, data) {
    const W = 420, H = 210, L = 40, R = 64, T = 12, B = 26;
    const points = data.years.map((y, i) => {
      const x = data.byYear[i]?.targets.find((g) => g.indicator === indicator);
      return { year: y, value: x ? x.actual_percent : null };
    });
    const marks = goals(indicator, data);
    const top = Math.max(100, ...marks.map((g) => g.percent), ...points.map((p) => p.value ?? 0));
    const sx = (year) => L + ((year - FIRST_YEAR) / (LAST_YEAR - FIRST_YEAR)) * (W - L - R);
    const sy = (v) => T + (1 - v / top) * (H - T - B);
    const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': indicatorName(indicator) });
    for (let v = 0; v <= top; v += 25) {
      g.append(svg('line', { class: 'gridline', x1: L, x2: W - R, y1: sy(v), y2: sy(v) }));
      g.append(svg('text', { x: L - 6, y: sy(v) + 3, 'text-anchor': 'end' }, `${v}%`));
    }
    g.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: sy(0), y2: sy(0) }));
    for (const y of data.years) g.append(svg('text', { x: sx(y), y: H - 8, 'text-anchor': 'middle' }, String(y)));
    const asOf = new Date(state.review.as_of + 'T00:00:00Z');
    const asOfYear = asOf.getUTCFullYear() - 1 + (asOf.getUTCMonth() * 31 + asOf.getUTCDate()) / 372;
    const at = sx(Math.min(LAST_YEAR, Math.max(FIRST_YEAR, asOfYear)));
    g.append(svg('line', { class: 'asof', x1: at, x2: at, y1: T, y2: sy(0) }));
    marks.sort((a, b) => a.year - b.year || a.percent - b.percent).forEach((m, i) => {
      const cls = `goal y${m.year}`;
      g.append(svg('line', { class: cls, x1: sx(FIRST_YEAR), x2: sx(m.year), y1: sy(m.percent), y2: sy(m.percent) }));
      g.append(svg('path', { class: `goal-mark y${m.year}`, d: `M${sx(m.year)} ${sy(m.percent) - 5} l5 5 l-5 5 l-5 -5 z` }));
      const labelY = sy(m.percent) + 3 + (i > 0 && Math.abs(marks[i - 1].percent - m.percent) < 6 ? 10 : 0);
      g.append(svg('text', { class: `goal-label y${m.year}`, x: W - R + 8, y: labelY }, `${m.year}: ${fmtPct(m.percent, 0)}`));
    });
    // The actual shares, broken where a year has none (no denominator, or nothing recorded yet).
    let d = '';
    let pen = false;
    for (const p of points) {
      if (p.value === null) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${sx(p.year).toFixed(1)} ${sy(p.value).toFixed(1)} `;
      pen = true;
    }
    if (d) g.append(svg('path', { class: 'line', d }));
    for (const p of points) {
      if (p.value === null) continue;
      const dot = svg('circle', { class: 'dot', cx: sx(p.year), cy: sy(p.value), r: 3.2 });
      dot.append(svg('title', {}, `${p.year}: ${fmtPct(p.value)}`));
      g.append(dot);
    }
    return el('figure', { class: 'chart', 'data-indicator': indicator },
      el('h3', {}, indicatorName(indicator), el('span', { class: 'code', text: indicator })),
      points.every((p) => p.value === null) ? el('p', { class: 'empty', text: t('no_data') }) : null,
      g);
  }

  // One unit's four counts of the chosen title at every month end, from the series endpoint.
  async function drawSeries(code, name) {
    const box = $('#series');
    box.hidden = false;
    box.replaceChildren(el('p', { class: 'empty', text: t('loading') }));
    const q = new URLSearchParams({ title: state.title, from: `${FIRST_YEAR}-01-01`, to: `${LAST_YEAR}-12-31`, step: 'month' });
    const k = knownParam();
    if (k) q.set('known_at', k);
    let series;
    try {
      series = await getJson(`/v1/units/${encodeURIComponent(code)}/series?${q}`);
    } catch (e) {
      if (e.status === 401) return askToken();
      box.replaceChildren(el('p', { class: 'error', text: e.message }));
      return;
    }
    const W = 900, H = 220, L = 56, R = 12, T = 10, B = 24;
    const first = Date.UTC(FIRST_YEAR, 0, 1);
    const last = Date.UTC(LAST_YEAR, 11, 31);
    const when = (day) => Date.parse(day + 'T00:00:00Z');
    const sx = (ms) => L + ((ms - first) / (last - first)) * (W - L - R);
    // Four whole steps on the axis, whatever the counts.
    const most = Math.max(0, ...series.points.flatMap((p) => COUNTS.map((c) => p[c])));
    const top = Math.max(4, Math.ceil(most / 4) * 4);
    const sy = (v) => T + (1 - v / top) * (H - T - B);
    const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${name} — ${titleName(state.title)}` });
    for (let i = 0; i <= 4; i++) {
      const v = (top * i) / 4;
      g.append(svg('line', { class: 'gridline', x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: '#eef2f6' }));
      g.append(svg('text', { x: L - 6, y: sy(v) + 3, 'text-anchor': 'end' }, fmtInt(Math.round(v))));
    }
    for (let y = FIRST_YEAR; y <= LAST_YEAR; y++) g.append(svg('text', { x: sx(Date.UTC(y, 6, 1)), y: H - 6, 'text-anchor': 'middle' }, String(y)));
    g.append(svg('line', { x1: sx(when(state.review.as_of)), x2: sx(when(state.review.as_of)), y1: T, y2: H - B, stroke: '#9aa5b1', 'stroke-dasharray': '2 2' }));
    for (const c of COUNTS) {
      const d = series.points.map((p, i) => `${i ? 'L' : 'M'}${sx(when(p.as_of)).toFixed(1)} ${sy(p[c]).toFixed(1)}`).join(' ');
      if (d) g.append(svg('path', { d, fill: 'none', stroke: SERIES_COLOURS[c], 'stroke-width': c === 'recognised' ? 2.4 : 1.6 }));
    }
    box.replaceChildren(
      el('h3', { text: `${t('series_of')}: ${titleName(state.title)} — ${name} (${code})` }),
      el('div', { class: 'legend' }, ...COUNTS.map((c) => el('span', {}, el('i', { style: `background:${SERIES_COLOURS[c]}` }), t(c)))),
      g,
    );
  }

  function askToken() {
    const wrong = sessionStorage.getItem(TOKEN) !== null;
    sessionStorage.removeItem(TOKEN);
    $('#token-wrong').hidden = !wrong;
    $('#token-form').hidden = false;
    $('#token').focus();
    document.body.dataset.state = 'token';
  }

  async function loadApprovals() {
    try {
      const { body, response } = await request('/v1/approvals');
      state.approvals = body.approvals;
      // `hoctap serve --approvals` says it records them.
      state.canApprove = (response.headers.get('Allow') || '').includes('POST');
    } catch {
      state.approvals = [];
      state.canApprove = false;
    }
  }

  // "Approve this review": where the server records approvals, for the review on screen (not one
  // approved already, nor a unit the reform had replaced by then).
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => values[k] ?? '');
  function renderApprove() {
    const card = $('#approve-card');
    const r = state.review;
    card.hidden = !(state.canApprove && r && !r.reform && !r.approved && r.known_at);
    if (card.hidden) return;
    const top = r.units.find((u) => u.code === r.scope);
    $('#approve-what').textContent = fill(t('approve_what'), {
      scope: top ? `${top.name} (${r.scope})` : r.scope,
      as_of: r.as_of,
      milestone: r.milestone ? ` (${t('milestone')} ${r.milestone})` : '',
      known_at: r.known_at,
      events: fmtInt(r.events),
    });
    if (!$('#approve-date').value) $('#approve-date').value = new Date().toISOString().slice(0, 10);
  }

  $('#approve-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = state.review;
    const result = $('#approve-result');
    const number = $('#approve-number').value.trim();
    const approval = {
      scope: r.scope, as_of: r.as_of, known_at: r.known_at, milestone: r.milestone ?? undefined,
      number, issuer: $('#approve-issuer').value.trim(), date: $('#approve-date').value,
    };
    try {
      const { body } = await request('/v1/approvals', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(approval),
      });
      result.className = 'done';
      result.textContent = fill(t(body.status === 'recorded' ? 'approve_done' : 'approve_again'), { number });
      result.hidden = false;
      await loadApprovals();
      state.known = 'approved:' + number;
      load();
    } catch (err) {
      result.className = 'error';
      result.textContent = err.message;
      result.hidden = false;
    }
  });

  // Controls.
  $('#controls').addEventListener('submit', (e) => e.preventDefault());
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN, $('#token').value.trim());
    $('#token').value = '';
    $('#token-form').hidden = true;
    loadApprovals().then(() => {
      applyText();
      load();
    });
  });
  $('#as-of').value = state.asOf;
  $('#as-of').addEventListener('change', (e) => {
    if (!e.target.value) return;
    state.asOf = e.target.value;
    if (approval() && approval().as_of !== state.asOf) state.known = ''; // another date is not the approved review
    load();
  });
  $('#known-at').addEventListener('change', (e) => {
    state.known = e.target.value;
    const a = approval();
    if (a) {
      state.asOf = a.as_of;
      $('#as-of').value = a.as_of;
      state.path = [];
      resetUnitView();
    }
    $('#known-date-label').hidden = state.known !== 'date';
    if (state.known !== 'date' || state.knownDate) load();
  });
  $('#known-date').addEventListener('change', (e) => {
    state.knownDate = e.target.value;
    load();
  });
  for (const b of document.querySelectorAll('.lang button')) {
    b.addEventListener('click', () => {
      state.lang = b.dataset.lang;
      localStorage.setItem('hoctap.lang', state.lang);
      remember();
      render();
      drawCharts(state.generation);
      if (state.picked) drawSeries(state.picked, state.review.units.find((u) => u.code === state.picked)?.name ?? state.picked);
    });
  }
  $('#title').addEventListener('change', (e) => {
    state.title = e.target.value;
    renderUnits();
    if (state.picked) drawSeries(state.picked, state.review.units.find((u) => u.code === state.picked)?.name ?? state.picked);
  });
  $('#filter').addEventListener('input', (e) => {
    state.filter = e.target.value;
    renderUnits();
  });
  for (const th of document.querySelectorAll('#units th[data-key]')) {
    th.addEventListener('click', () => {
      const key = th.dataset.key;
      state.sort = state.sort.key === key ? { key, dir: -state.sort.dir } : { key, dir: key === 'code' || key === 'name' ? 1 : -1 };
      renderUnits();
    });
  }

  loadApprovals().then(() => {
    const a = approval();
    if (a) {
      state.asOf = a.as_of;
      $('#as-of').value = a.as_of;
    } else if (state.known.startsWith('approved:')) {
      state.known = '';
    }
    applyText();
    load();
  });
})();
