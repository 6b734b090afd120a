/*! adserver widget: the "Matching School Ads" box. One file, no dependencies.
 * <script src="https://<host>/widget.js" data-key="pk_..." data-interest="medical-office-management" async></script>
 * Optional: data-degree-level, data-modality, data-limit (1-10), data-target (a container id),
 * data-postal-code (search at once). Renders into an open shadow root; styles are a constructed
 * stylesheet and handlers are attached in code, so a strict Content-Security-Policy allows both. */
(() => {
  "use strict";
  const script = document.currentScript || document.querySelector("script[data-key][src*='widget']:not([data-adserver-ready])");
  if (!script || script.hasAttribute("data-adserver-ready")) return;
  script.setAttribute("data-adserver-ready", "");
  const mark = (name) => { try { performance.mark("adserver-widget:" + name); } catch (e) { /* marks are optional */ } };
  mark("start");

  const API = new URL(script.src, location.href).origin;
  const opts = script.dataset;
  const KEY = opts.key || "";
  const LIMIT = Math.min(10, Math.max(1, parseInt(opts.limit, 10) || 5));
  const BULLETS_SHOWN = 2;
  const TIMEOUT_MS = 15000;
  const ZIP_RE = /^(\d{5}(-\d{4})?|[A-Z]\d[A-Z] ?\d[A-Z]\d)$/;
  const BAD_ZIP = "Please enter valid US or Canada Zip.";
  const DEGREES = [["", "Any degree level"], ["certificate", "Certificate or diploma"], ["associate", "Associate"],
    ["bachelor", "Bachelor's"], ["master", "Master's"], ["doctorate", "Doctorate"]];
  const MODALITIES = [["", "Online or campus"], ["online", "Online"], ["campus", "On campus"], ["hybrid", "Hybrid"]];
  const EDUCATION = [["", "Choose one"], ["none", "Some high school"], ["high_school", "High school diploma or GED"],
    ["associate", "Associate degree"], ["bachelor", "Bachelor's degree"], ["master", "Master's degree"],
    ["doctorate", "Doctorate"]];
  const EDUCATION_WORDS = { none: "no diploma", high_school: "a high school diploma or GED",
    associate: "an associate degree", bachelor: "a bachelor's degree", master: "a master's degree",
    doctorate: "a doctorate" };

  const CSS = `
:host{all:initial!important;display:block!important;visibility:visible!important;position:static!important;
  width:auto!important;max-width:100%!important;float:none!important;opacity:1!important;contain:content}
*{box-sizing:border-box}
[hidden]{display:none!important}
.box{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1f2328;background:#fff;
  border:1px solid #d0d7de;border-radius:8px;padding:16px;text-align:left;overflow-wrap:anywhere}
h2{font-size:19px;margin:0 0 4px;font-weight:700}
h3{font-size:17px;margin:0;font-weight:700}
h4{font-size:16px;margin:0 0 8px}
p{margin:0}
a{color:#0b5cad}
fieldset{border:0;margin:0;padding:0;min-width:0}
legend{font-weight:600;padding:0;margin:0 0 8px}
label{display:block;font-size:13px;font-weight:600;margin:0 0 3px}
input,select,button{font:inherit;font-size:15px;color:inherit;margin:0}
input[type=text],input[type=email],input[type=tel],select{display:block;width:100%;min-height:40px;padding:6px 8px;
  border:1px solid #8c959f;border-radius:6px;background:#fff}
input[aria-invalid=true],select[aria-invalid=true]{border-color:#c62828;border-width:2px}
button{cursor:pointer;border-radius:6px;min-height:40px;padding:6px 14px;border:1px solid #0b5cad;background:#0b5cad;
  color:#fff;font-weight:600}
button:disabled{opacity:.6;cursor:progress}
button.plain{background:#fff;color:#0b5cad}
button.link{background:none;border:0;color:#0b5cad;padding:2px 0;min-height:0;font-weight:600;text-decoration:underline}
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.refine{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;align-items:end}
.note,.sponsored{font-size:12px;color:#57606a;margin:8px 0 0}
.status{margin:12px 0 0;font-weight:600}
.err{color:#b71c1c;font-size:13px;font-weight:600;margin:4px 0 0}
.alert{border:1px solid #c62828;background:#fff5f5;color:#b71c1c;border-radius:6px;padding:10px;margin:12px 0 0}
.alert button{margin:8px 0 0}
.empty{margin:12px 0 0;padding:10px;background:#f6f8fa;border-radius:6px}
.cards{list-style:none;margin:12px 0 0;padding:0;display:grid;gap:12px}
.card{border:1px solid #d0d7de;border-radius:8px;padding:12px;background:#fff}
.head{display:flex;gap:12px;align-items:flex-start;flex-wrap:wrap}
.logo{width:72px;height:48px;flex:none;display:flex;align-items:center;justify-content:center;border-radius:4px;
  background:#eef2f6;color:#0b5cad;font-weight:700;font-size:16px;overflow:hidden}
.logo img{max-width:100%;max-height:100%;display:block}
.title{flex:1 1 180px;min-width:0}
.headline{margin:2px 0 0}
.badge{display:inline-block;background:#fff4d6;color:#6b4e00;border:1px solid #e0b84c;border-radius:999px;
  padding:1px 10px;font-size:12px;font-weight:700;margin:6px 0 0}
.bullets{margin:10px 0 0;padding:0 0 0 20px}
.bullets li{margin:2px 0}
.tags{list-style:none;margin:8px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:6px}
.tags li{background:#e8f1fb;color:#0b4a8b;border-radius:4px;padding:1px 8px;font-size:12px}
.found{font-size:13px;color:#57606a;margin:8px 0 0}
.actions{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0 0}
.actions a{display:inline-flex;align-items:center;min-height:40px;padding:6px 14px;border:1px solid #0b5cad;
  border-radius:6px;text-decoration:none;font-weight:600}
form.lead{margin:12px 0 0;padding:12px;border-top:1px solid #d0d7de;background:#f6f8fa;border-radius:0 0 6px 6px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:10px}
.check{display:flex;flex-wrap:wrap;gap:0 8px;align-items:flex-start;margin:10px 0 0}
.check .err{flex-basis:100%}
.check input{width:20px;height:20px;flex:none;margin:2px 0 0}
.check label{flex:1 1 0;font-weight:400;font-size:13px;margin:0}
.submit{margin:12px 0 0}
.done{margin:12px 0 0;padding:12px;border:1px solid #2e7d32;background:#f1f8f1;color:#1b5e20;border-radius:6px;font-weight:600}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
`;

  let uid = 0;
  const nextId = (prefix) => `aw-${prefix}-${++uid}`;

  // h("p", {testid: "x", text: "..."}, child...): an element, with handlers attached in code.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") el.textContent = value;
      else if (name === "testid") el.setAttribute("data-testid", value);
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else if (name === "value" || name === "checked") el[name] = value;
      else el.setAttribute(name, value === true ? "" : value);
    }
    el.append(...children.filter((child) => child !== null && child !== undefined));
    return el;
  }

  function options(select, pairs, chosen) {
    select.replaceChildren(...pairs.map(([value, label]) => h("option", { value, text: label })));
    if (chosen !== undefined) select.value = chosen;
  }

  function randomHex(bytes) {
    const values = crypto.getRandomValues(new Uint8Array(bytes));
    return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // A random id kept in this site's own storage (never a third-party cookie), for frequency caps.
  let memoryVisitor = null;
  function visitorId() {
    try {
      let id = localStorage.getItem("adserver_visitor_id");
      if (!id) {
        id = "v_" + randomHex(16);
        localStorage.setItem("adserver_visitor_id", id);
      }
      return id;
    } catch (e) {
      return (memoryVisitor = memoryVisitor || "v_" + randomHex(16));
    }
  }

  // fetch with a deadline; resolves to {status, body} or rejects on a network failure.
  async function call(path, init) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    try {
      const response = await fetch(API + path, { credentials: "omit", signal: controller.signal, ...init });
      let body = null;
      try { body = await response.json(); } catch (e) { body = null; }
      return { status: response.status, body };
    } finally {
      clearTimeout(timer);
    }
  }

  const errorOf = (result) => (result.body && result.body.error) || { code: "http_" + result.status, message: "" };
  const normalZip = (value) => value.trim().toUpperCase();

  // ---- the box ------------------------------------------------------------------------

  const host = document.createElement("div");
  host.className = "adserver-widget";
  const target = opts.target && document.getElementById(opts.target);
  if (target) target.append(host);
  else script.after(host);
  const root = host.attachShadow({ mode: "open" });
  if (root.adoptedStyleSheets !== undefined && typeof CSSStyleSheet.prototype.replaceSync === "function") {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else {
    root.append(h("style", { text: CSS })); // older browsers, where a strict page CSP may block it
  }

  const ids = { zip: nextId("zip"), interest: nextId("interest"), degree: nextId("degree"),
    modality: nextId("modality"), title: nextId("title"), zipError: nextId("zip-error") };
  const zipInput = h("input", { id: ids.zip, type: "text", name: "postal_code", testid: "postal-input",
    autocomplete: "postal-code", maxlength: "10", placeholder: "e.g. 33620", value: opts.postalCode || "" });
  const interestSelect = h("select", { id: ids.interest, name: "interest", testid: "interest-select" });
  const degreeSelect = h("select", { id: ids.degree, name: "degree_level", testid: "degree-select" });
  const modalitySelect = h("select", { id: ids.modality, name: "modality", testid: "modality-select" });
  options(interestSelect, [["", "Any program"]].concat(opts.interest ? [[opts.interest, opts.interest]] : []),
    opts.interest || "");
  options(degreeSelect, DEGREES, opts.degreeLevel || "");
  options(modalitySelect, MODALITIES, opts.modality || "");
  const searchButton = h("button", { type: "submit", testid: "search-button", text: "Search" });
  const zipField = h("div", {}, h("label", { for: ids.zip, text: "ZIP or postal code" }), zipInput);
  const field = (id, text, control) => h("div", {}, h("label", { for: id, text }), control);
  const refine = h("form", { class: "refine-form", role: "search", novalidate: true, onsubmit: (event) => {
    event.preventDefault();
    search();
  } }, h("fieldset", {}, h("legend", { text: "Refine School Matches" }), h("div", { class: "refine" },
    zipField, field(ids.interest, "Program", interestSelect), field(ids.degree, "Degree level", degreeSelect),
    field(ids.modality, "Online or campus", modalitySelect), h("div", {}, searchButton))));
  const status = h("div", { class: "status", "aria-live": "polite" });
  const results = h("ol", { class: "cards", "aria-labelledby": ids.title });
  const messages = h("div", {});
  root.append(h("section", { class: "box", "aria-labelledby": ids.title },
    h("h2", { id: ids.title, text: "Matching School Ads" }), refine,
    h("p", { class: "note", text: "Results open in new window" }), status, messages, results,
    h("p", { class: "sponsored", text: "Sponsored listings" })));

  function showPostalError(text) {
    zipField.querySelector(".err")?.remove();
    zipInput.removeAttribute("aria-invalid");
    zipInput.removeAttribute("aria-describedby");
    if (!text) return;
    zipField.append(h("p", { id: ids.zipError, class: "err", role: "alert", testid: "postal-error", text }));
    zipInput.setAttribute("aria-invalid", "true");
    zipInput.setAttribute("aria-describedby", ids.zipError);
  }

  function showWidgetError(text, retry) {
    messages.replaceChildren(h("div", { class: "alert", role: "alert", testid: "widget-error" },
      h("p", { text }), retry ? h("button", { type: "button", class: "plain", text: "Try again", onclick: retry }) : null));
  }

  // Plain words for the answers a visitor or publisher can act on.
  function searchProblem(error) {
    switch (error.code) {
      case "origin_not_allowed":
        return "School listings cannot be shown on this site: its address is not one of the publisher's allowed domains.";
      case "unauthorized":
        return "School listings cannot be shown: the publisher key in this page's embed code is not recognised.";
      case "rate_limited":
        return "Too many searches just now. Please wait a moment and try again.";
      default:
        return "School listings are unavailable right now. Please try again.";
    }
  }

  let searchSeq = 0;
  let searched = false;
  let lastZip = "";

  async function search() {
    const zip = normalZip(zipInput.value);
    messages.replaceChildren();
    if (!ZIP_RE.test(zip)) {
      showPostalError(BAD_ZIP);
      zipInput.focus();
      return;
    }
    showPostalError("");
    const seq = ++searchSeq;
    lastZip = zip;
    results.replaceChildren();
    results.setAttribute("aria-busy", "true");
    status.replaceChildren(h("p", { testid: "searching", text: "Searching ..." }));
    const params = new URLSearchParams({ key: KEY, postal_code: zip, limit: String(LIMIT), visitor_id: visitorId() });
    for (const [name, select] of [["interest", interestSelect], ["degree_level", degreeSelect], ["modality", modalitySelect]]) {
      if (select.value) params.set(name, select.value);
    }
    let result;
    try {
      result = await call("/v1/ads?" + params, { method: "GET" });
    } catch (e) {
      result = null;
    }
    if (seq !== searchSeq) return; // a newer search is under way
    searched = true;
    results.removeAttribute("aria-busy");
    status.replaceChildren();
    if (!result) {
      showWidgetError("We could not reach the school listings. Check your connection and try again.", search);
      return;
    }
    if (result.status !== 200 || !result.body) {
      const error = errorOf(result);
      if (error.code === "invalid_postal_code") {
        showPostalError(error.message || BAD_ZIP);
        zipInput.focus();
      } else {
        const fixable = !["origin_not_allowed", "unauthorized"].includes(error.code);
        showWidgetError(searchProblem(error), fixable ? search : null);
      }
      return;
    }
    render(result.body);
  }

  function render(answer) {
    const ads = answer.ads || [];
    const programs = ads.reduce((sum, ad) => sum + (ad.programs_found || 0), 0);
    if (!ads.length) {
      status.replaceChildren(h("p", { testid: "results-count", text: "0 Program(s) Found" }));
      messages.replaceChildren(h("p", { class: "empty", testid: "empty-state",
        text: "No schools match these choices. Try another program, any degree level, or online and campus." }));
      return;
    }
    status.replaceChildren(h("p", { testid: "results-count", text: `${programs} Program(s) Found` }));
    results.replaceChildren(...ads.map(card));
    mark("cards");
  }

  // ---- school cards -------------------------------------------------------------------

  function logo(school) {
    const initials = school.name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0]).join("").toUpperCase();
    // The initials stand in until the logo has loaded, and for good if it cannot be.
    const box = h("div", { class: "logo" }, h("span", { "aria-hidden": "true", text: initials }));
    if (school.logo_url) {
      const img = h("img", { alt: "", onload: () => box.replaceChildren(img) });
      img.src = school.logo_url;
    }
    return box;
  }

  function link(ad, text, extra) {
    return h("a", { href: ad.click_url, target: "_blank", rel: "noopener", ...extra }, text,
      h("span", { class: "sr", text: " (opens in a new window)" }));
  }

  function card(ad) {
    const school = ad.school;
    const bullets = h("ul", { class: "bullets" }, ...ad.bullets.map((text, i) =>
      h("li", { text, hidden: i >= BULLETS_SHOWN })));
    let toggle = null;
    if (ad.bullets.length > BULLETS_SHOWN) {
      toggle = h("button", { type: "button", class: "link", testid: "show-more", "aria-expanded": "false",
        text: "Show more [+]", onclick: () => {
          const open = toggle.getAttribute("aria-expanded") !== "true";
          toggle.setAttribute("aria-expanded", String(open));
          toggle.textContent = open ? "Show less [-]" : "Show more [+]";
          Array.from(bullets.children).forEach((li, i) => { li.hidden = !open && i >= BULLETS_SHOWN; });
        } });
    }
    const formSlot = h("div", {});
    const requestInfo = h("button", { type: "button", testid: "request-info", "aria-expanded": "false",
      text: "Request info", onclick: () => {
        if (formSlot.firstChild) {
          formSlot.replaceChildren();
          requestInfo.setAttribute("aria-expanded", "false");
          return;
        }
        const form = leadForm(ad, () => requestInfo.remove());
        formSlot.append(form);
        requestInfo.setAttribute("aria-expanded", "true");
        requestInfo.setAttribute("aria-controls", form.id);
        form.querySelector("input,select")?.focus();
      } });
    return h("li", { class: "card", testid: "school-card", "data-campaign-id": ad.campaign_id,
      "data-rank": String(ad.rank) },
      h("div", { class: "head" }, logo(school), h("div", { class: "title" },
        h("h3", {}, link(ad, school.name)), h("p", { class: "headline", text: ad.headline }),
        ad.badge ? h("p", { class: "badge", text: ad.badge }) : null)),
      bullets, toggle,
      ad.tags.length ? h("ul", { class: "tags", "aria-label": "Features" }, ...ad.tags.map((t) => h("li", { text: t }))) : null,
      h("p", { class: "found", text: `${ad.programs_found} Program(s) Found` }),
      h("div", { class: "actions" }, link(ad, "Visit school"), requestInfo),
      formSlot);
  }

  // ---- request info -------------------------------------------------------------------

  function ineligibleWords(rule, rules, school) {
    switch (rule) {
      case "min_education":
        return `${school} asks for at least ${EDUCATION_WORDS[rules.min_education] || rules.min_education} for this program.`;
      case "min_age":
        return `${school} accepts requests from people aged ${rules.min_age} or older.`;
      case "graduation_year_max":
        return `${school} accepts requests from people who graduated in ${rules.graduation_year_max} or earlier.`;
      case "requires_rn_license":
        return `This program is for registered nurses: ${school} asks for an active RN license.`;
      case "military_only":
        return `This program is open to military service members and veterans only.`;
      default:
        return `Your details do not meet ${school}'s requirements for this program.`;
    }
  }

  function leadProblem(error, school) {
    switch (error.code) {
      case "duplicate_lead":
        return `You already asked ${school} for information in the last 30 days; they have your details.`;
      case "cap_reached":
        return `${school} is not taking more requests today. Please try another school.`;
      case "token_expired":
        return "This listing has expired. Please search again.";
      case "origin_not_allowed":
      case "unauthorized":
        return "Requests cannot be sent from this site.";
      case "rate_limited":
        return "Too many requests just now. Please wait a moment and try again.";
      default:
        return error.message || "Your request could not be sent. Please try again.";
    }
  }

  function leadForm(ad, onDone) {
    const rules = ad.eligibility || {};
    const schoolName = ad.school.name;
    const formId = nextId("lead");
    const controls = {};
    const rows = [];

    function input(name, label, type, extra) {
      const id = nextId(name);
      controls[name] = h("input", { id, name, type, ...extra });
      rows.push(field(id, label, controls[name]));
    }
    function select(name, label, pairs, extra) {
      const id = nextId(name);
      controls[name] = h("select", { id, name, ...extra });
      options(controls[name], pairs, "");
      rows.push(field(id, label, controls[name]));
    }
    function checkbox(name, label, extra) {
      const id = nextId(name);
      controls[name] = h("input", { id, name, type: "checkbox", ...extra });
      return h("div", { class: "check" }, controls[name], h("label", { for: id, text: label }));
    }

    input("first_name", "First name", "text", { autocomplete: "given-name", maxlength: "100" });
    input("last_name", "Last name", "text", { autocomplete: "family-name", maxlength: "100" });
    input("email", "Email", "email", { autocomplete: "email", maxlength: "254" });
    input("phone", "Phone", "tel", { autocomplete: "tel", maxlength: "32" });
    input("postal_code", "ZIP or postal code", "text", { autocomplete: "postal-code", maxlength: "10", value: lastZip });
    select("education_level", "Highest education completed", EDUCATION);
    input("graduation_year", "Graduation year", "text", { inputmode: "numeric", maxlength: "4", placeholder: "YYYY" });
    if (rules.min_age !== null && rules.min_age !== undefined) {
      input("birth_year", "Birth year", "text", { inputmode: "numeric", maxlength: "4", placeholder: "YYYY",
        autocomplete: "bday-year" });
    }
    if (ad.programs.length > 1) {
      select("program_id", "Program", [["", "Choose a program"]].concat(ad.programs.map((p) => [p.id, p.name])),
        { testid: "program-select" });
    }
    const checks = [];
    if (rules.requires_rn_license) checks.push(checkbox("rn_license", "I hold an active registered nurse (RN) license"));
    if (rules.military_only) checks.push(checkbox("military", "I am serving in the military or am a veteran"));
    const consent = checkbox("consent", ad.consent_text, { testid: "consent-checkbox" });
    const submit = h("button", { type: "submit", class: "submit", testid: "lead-submit", text: "Request info" });
    const summary = h("div", {});
    const form = h("form", { id: formId, class: "lead", testid: "lead-form", novalidate: true,
      "aria-label": `Request info from ${schoolName}`, onsubmit: (event) => {
        event.preventDefault();
        send();
      } }, h("h4", { text: `Request info from ${schoolName}` }), h("div", { class: "grid" }, ...rows), ...checks,
      consent, summary, submit);

    function fieldError(name, text) {
      const control = controls[name];
      const box = control.closest(".check") || control.parentElement;
      box.querySelector(".err")?.remove();
      control.removeAttribute("aria-invalid");
      control.removeAttribute("aria-describedby");
      if (!text) return;
      const id = nextId("err");
      box.append(h("p", { id, class: "err", testid: "field-error", "data-field": name, text }));
      control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-describedby", id);
    }
    function leadError(text) {
      summary.replaceChildren(text ? h("p", { class: "alert", role: "alert", testid: "lead-error", text }) : "");
    }

    const value = (name) => (controls[name] ? controls[name].value.trim() : "");
    const year = (name) => (value(name) ? parseInt(value(name), 10) : null);

    function check() {
      const problems = {};
      const need = (name, text) => { if (controls[name] && !value(name)) problems[name] = text; };
      need("first_name", "Please enter your first name.");
      need("last_name", "Please enter your last name.");
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value("email"))) problems.email = "Please enter a valid email address.";
      const digits = value("phone").replace(/\D/g, "");
      if (!(digits.length === 10 || (digits.length === 11 && digits[0] === "1"))) {
        problems.phone = "Please enter a 10-digit US or Canada phone number.";
      }
      if (!ZIP_RE.test(normalZip(value("postal_code")))) problems.postal_code = BAD_ZIP;
      need("education_level", "Please choose your highest education.");
      for (const name of ["graduation_year", "birth_year"]) {
        if (controls[name] && value(name) && !/^(19|20)\d\d$/.test(value(name))) problems[name] = "Please enter a year such as 2010.";
      }
      if (rules.graduation_year_max !== null && rules.graduation_year_max !== undefined) {
        need("graduation_year", "Please enter the year you graduated.");
      }
      need("birth_year", "Please enter your birth year.");
      need("program_id", "Please choose a program.");
      if (!controls.consent.checked) problems.consent = "Please tick the box to agree to be contacted.";
      return problems;
    }

    function showProblems(problems) {
      for (const name of Object.keys(controls)) fieldError(name, problems[name]);
      const first = Object.keys(controls).find((name) => problems[name]);
      if (first) controls[first].focus();
    }

    let busy = false;
    let lastAttempt = null; // {body, key}: a retry of the same details reuses its Idempotency-Key

    async function send() {
      if (busy) return;
      leadError("");
      const problems = check();
      showProblems(problems);
      if (Object.keys(problems).length) {
        leadError("Please correct the highlighted fields.");
        return;
      }
      const single = ad.programs.length === 1 ? ad.programs[0].id : null;
      const pageUrl = /^https?:/.test(location.href) ? location.href.slice(0, 2048) : null;
      const body = JSON.stringify({
        lead_token: ad.lead_token, first_name: value("first_name"), last_name: value("last_name"),
        email: value("email"), phone: value("phone"), postal_code: normalZip(value("postal_code")),
        education_level: value("education_level"), graduation_year: year("graduation_year"),
        birth_year: year("birth_year"), military: !!(controls.military && controls.military.checked),
        rn_license: !!(controls.rn_license && controls.rn_license.checked),
        program_id: value("program_id") || single,
        consent: { granted: true, text: ad.consent_text, page_url: pageUrl },
      });
      const key = lastAttempt && lastAttempt.body === body ? lastAttempt.key : "lead_" + randomHex(16);
      lastAttempt = { body, key };
      busy = true;
      submit.disabled = true;
      submit.textContent = "Sending ...";
      let result = null;
      try {
        for (let tries = 0; tries < 5; tries++) {
          result = await call("/v1/leads", { method: "POST", body, headers: { "Content-Type": "application/json",
            "X-Publisher-Key": KEY, "Idempotency-Key": key } });
          if (errorOf(result).code !== "idempotency_in_progress") break;
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      } catch (e) {
        result = null;
      }
      busy = false;
      submit.disabled = false;
      submit.textContent = "Request info";
      if (!result) {
        leadError("We could not send your request. Check your connection and try again.");
        return;
      }
      if (result.status === 201) {
        lastAttempt = null;
        const done = h("p", { class: "done", role: "status", tabindex: "-1", testid: "lead-confirmation",
          "data-lead-id": result.body.id, text: `Thank you, ${value("first_name")}! Your request was sent to ` +
            `${schoolName}. They will contact you soon.` });
        form.replaceWith(done);
        onDone();
        done.focus();
        return;
      }
      const error = errorOf(result);
      if (error.code === "validation_error" && error.fields) {
        const mapped = {};
        const other = [];
        for (const [path, why] of Object.entries(error.fields)) {
          const name = path.split(".")[0];
          if (controls[name]) mapped[name] = `Please check this: ${why}.`;
          else other.push(why);
        }
        showProblems(mapped);
        leadError(other.length ? `Your request could not be sent: ${other.join("; ")}.` : "Please correct the highlighted fields.");
      } else if (error.code === "not_eligible") {
        const rule = Object.keys(error.fields || {})[0];
        leadError(ineligibleWords(rule, rules, schoolName));
      } else {
        leadError(leadProblem(error, schoolName));
      }
    }
    return form;
  }

  // ---- start --------------------------------------------------------------------------

  for (const select of [interestSelect, degreeSelect, modalitySelect]) {
    select.addEventListener("change", () => { if (searched) search(); });
  }
  call("/v1/interests", { method: "GET" }).then((result) => {
    const list = (result.body && result.body.data) || [];
    if (!list.length) return;
    const chosen = interestSelect.value;
    options(interestSelect, [["", "Any program"]].concat(list.map((i) => [i.slug, i.name])), chosen);
  }).catch(() => { /* the embed's own interest stays selectable */ });
  if (opts.postalCode) search();
})();
