// django_recs lists for cached and JavaScript-built pages (docs/api.md). No dependencies.
//
// <script src=".../django_recs/recs.js" data-recs-api="/recs/" defer></script>
// <div data-recs="similar|recommended|popular" data-item="shop.product:12" data-n="6"
//      data-placement="product-cached" data-exclude="12,15">
//   <template><a data-recs-attr-href="item.url" data-recs-text="item.name"></a></template>
// </div>
//
// Each container is filled from the JSON endpoint: a copy of its <template> per item,
// with data-recs-text="path" setting the text and data-recs-attr-NAME="path" the
// attribute NAME from the item's entry ("item.name", "score", "reason.name"). Copies go
// into the container's [data-recs-target] element, or the container itself. The links
// of a logged list (asked with data-placement) carry data-recs-click="<token>", posted to
// click/ with navigator.sendBeacon when followed. The impression was logged by the
// server as it answered (the request is private, one per page view): no impression
// beacon. data-recs-lazy fetches a list only when its container nears the viewport, so
// a list nobody scrolls to is not counted as shown.
(function () {
  "use strict";
  var script = document.currentScript;
  var api = (script && script.getAttribute("data-recs-api")) || "/recs/";
  if (api.charAt(api.length - 1) !== "/") { api += "/"; }

  function value(entry, path) {
    var parts = path.split("."), current = entry;
    for (var i = 0; i < parts.length && current != null; i++) { current = current[parts[i]]; }
    return current == null ? "" : String(current);
  }

  function listUrl(box) {
    var kind = box.getAttribute("data-recs"), path;
    if (kind === "similar") {
      var item = (box.getAttribute("data-item") || "").split(":");
      if (item.length !== 2) { return null; }
      path = "similar/" + encodeURIComponent(item[0]) + "/" + encodeURIComponent(item[1]) + "/";
    } else if (kind === "recommended" || kind === "popular") {
      path = kind + "/";
    } else {
      return null;
    }
    var query = [];
    ["n", "placement", "exclude", "model"].forEach(function (name) {
      var given = box.getAttribute("data-" + name);
      if (given) { query.push(name + "=" + encodeURIComponent(given)); }
    });
    return api + path + (query.length ? "?" + query.join("&") : "");
  }

  function render(box, list) {
    var template = box.querySelector("template");
    var target = box.querySelector("[data-recs-target]") || box;
    if (!template) { return; }
    list.items.forEach(function (entry) {
      var copy = template.content.cloneNode(true);
      copy.querySelectorAll("*").forEach(function (node) {
        Array.prototype.slice.call(node.attributes).forEach(function (attribute) {
          if (attribute.name === "data-recs-text") {
            node.textContent = value(entry, attribute.value);
          } else if (attribute.name.indexOf("data-recs-attr-") === 0) {
            node.setAttribute(attribute.name.slice(15), value(entry, attribute.value));
          }
        });
        if (entry.token && node.tagName === "A") { node.setAttribute("data-recs-click", entry.token); }
      });
      target.appendChild(copy);
    });
  }

  function fill(box) {
    if (box.getAttribute("data-recs-state")) { return; }
    var url = listUrl(box);
    box.setAttribute("data-recs-state", "loading");
    if (!url || !window.fetch) { box.setAttribute("data-recs-state", "error"); return; }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("django_recs: " + url + " answered " + response.status); }
        return response.json();
      })
      .then(function (list) {
        render(box, list);
        if (list.impression) { box.setAttribute("data-recs-impression", list.impression); }
        box.setAttribute("data-recs-state", list.items.length ? "filled" : "empty");
        box.dispatchEvent(new CustomEvent("recs:filled", { bubbles: true, detail: list }));
      })
      .catch(function (error) {
        box.setAttribute("data-recs-state", "error");
        if (window.console) { console.warn(error); }
      });
  }

  function fillAll(root) {
    var boxes = (root || document).querySelectorAll("[data-recs]");
    var observer = window.IntersectionObserver && new IntersectionObserver(function (seen) {
      seen.forEach(function (sight) {
        if (sight.isIntersecting) { observer.unobserve(sight.target); fill(sight.target); }
      });
    }, { rootMargin: "200px" });
    boxes.forEach(function (box) {
      if (observer && box.hasAttribute("data-recs-lazy")) { observer.observe(box); } else { fill(box); }
    });
  }

  function sendClick(event) {
    if (event.type === "auxclick" && event.button !== 1) { return; }
    var link = event.target.closest && event.target.closest("[data-recs-click]");
    if (!link || !navigator.sendBeacon) { return; }
    var form = new FormData();
    form.append("token", link.getAttribute("data-recs-click"));
    navigator.sendBeacon(api + "click/", form);
  }

  document.addEventListener("click", sendClick, true);
  document.addEventListener("auxclick", sendClick, true);
  window.djangoRecs = { fill: fillAll };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { fillAll(); });
  } else {
    fillAll();
  }
}());
