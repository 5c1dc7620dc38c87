// Live updates: an element with data-events gets its contents replaced by each server-sent
// event (the server renders the HTML and sends it only when it changed).
(function () {
  "use strict";
  function follow(el) {
    var source = new EventSource(el.getAttribute("data-events"));
    source.addEventListener("html", function (e) {
      el.innerHTML = e.data;
      el.setAttribute("data-updated", String(Date.now()));
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-events]").forEach(follow);
  });
})();
