// ktsync console: live refresh of a page's [data-refresh] section (seconds), nothing else.
// No framework and nothing from elsewhere: the page is fetched again and its section swapped in.
(function () {
  "use strict";
  var live = document.querySelector("[data-refresh]");
  if (!live || !window.fetch || !window.DOMParser) { return; }
  var every = Math.max(2, parseInt(live.getAttribute("data-refresh"), 10) || 10) * 1000;
  function refresh() {
    if (document.hidden) { return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(live.id);
        if (fresh) { live.replaceWith(fresh); live = fresh; }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(refresh, every);
})();
