// The create form's reference image: a preview cropped exactly as muxweb will send it, covering
// the chosen video size. Event listeners only (no inline handlers), so it runs under a strict CSP.
(function () {
  "use strict";

  function showPreview() {
    var input = document.getElementById("id_input_reference");
    var preview = document.getElementById("reference-preview");
    if (!input || !preview) return;
    var image = preview.querySelector("img");
    var file = input.files && input.files[0];
    if (image.dataset.url) {
      URL.revokeObjectURL(image.dataset.url);
      delete image.dataset.url;
    }
    if (!file) {
      preview.hidden = true;
      image.removeAttribute("src");
      return;
    }
    var size = document.getElementById("id_size");
    var parts = (size && size.value ? size.value : "1280x720").split("x");
    image.style.aspectRatio = parts[0] + " / " + parts[1];
    image.dataset.url = URL.createObjectURL(file);
    image.src = image.dataset.url;
    preview.hidden = false;
  }

  document.addEventListener("change", function (event) {
    if (["id_input_reference", "id_size", "id_model"].indexOf(event.target.id) !== -1) showPreview();
  });
  // A new size list (model changed) or a fresh form (job created) redraws the preview.
  document.addEventListener("htmx:afterSettle", showPreview);
})();
