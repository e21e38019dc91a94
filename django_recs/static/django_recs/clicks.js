// django_recs click beacon: a followed link with data-recs-click="<token>" posts the
// token to the URL in this script's data-recs-beacon attribute (docs/feedback.md).
(function () {
  "use strict";
  var script = document.currentScript;
  var beacon = script && script.getAttribute("data-recs-beacon");
  if (!beacon || !navigator.sendBeacon) { return; }
  function send(event) {
    if (event.type === "auxclick" && event.button !== 1) { return; }
    var link = event.target.closest && event.target.closest("[data-recs-click]");
    if (!link) { return; }
    var form = new FormData();
    form.append("token", link.getAttribute("data-recs-click"));
    navigator.sendBeacon(beacon, form);
  }
  document.addEventListener("click", send, true);
  document.addEventListener("auxclick", send, true);
}());
