// Allot console: the little the pages need beyond HTML.
// - A part marked data-refresh="URL" replaces its content from URL every data-every ms while it
//   is live (data-live="true": a sync running, a deployment moving); the fragment says whether it
//   is still live with a data-still-live element. A part that is not live is left alone.
// - Forms marked data-confirm ask first.
// - A field marked data-suggest="URL" fills its datalist from URL?q=<what is typed> when it is
//   focused and as it is typed (a few names at a time, not thousands in every page).
// - Times: until the account chooses a time zone, pages use the browser's (the allot_tz cookie).
(function () {
  if (!/(^|; )allot_tz=/.test(document.cookie)) {
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone && /^[A-Za-z0-9_+\/-]+$/.test(zone)) {
        document.cookie = "allot_tz=" + zone + "; path=/; max-age=31536000; samesite=strict";
        // The page was made in UTC; once, show it in the browser's time.
        if (document.querySelector("header.top")) { window.location.reload(); }
      }
    } catch (e) { /* no Intl: UTC */ }
  }
  function poll(el) {
    if (el.getAttribute("data-live") !== "true") { return; }
    var every = parseInt(el.getAttribute("data-every") || "1000", 10);
    setTimeout(function () {
      fetch(el.getAttribute("data-refresh"), { credentials: "same-origin" })
        .then(function (r) {
          // Signed out meanwhile: show the sign-in page rather than paste it into this one.
          if (r.redirected) { window.location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html !== null) {
            el.innerHTML = html;
            el.setAttribute("data-live", el.querySelector("[data-still-live]") ? "true" : "false");
          }
          poll(el);
        })
        .catch(function () { poll(el); });
    }, every);
  }
  document.querySelectorAll("[data-refresh]").forEach(poll);
  function suggest(input) {
    var list = input.list, timer = null, asked = null;
    if (!list) { return; }
    function ask() {
      var q = input.value;
      if (q === asked) { return; }
      asked = q;
      fetch(input.getAttribute("data-suggest") + "?q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
        .then(function (html) {
          // Only the answer to what the field still holds (an older one may arrive late).
          if (html !== null && input.value === q) { list.innerHTML = html; }
        })
        .catch(function () { asked = null; });
    }
    input.addEventListener("focus", ask);
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 150);
    });
  }
  document.querySelectorAll("input[data-suggest]").forEach(suggest);
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });
})();
