// Share the photo (or the clip) where the phone supports sharing files of its type (the Web
// Share API needs HTTPS or localhost); elsewhere the button stays hidden and the Download
// button does the job.
(function () {
  "use strict";
  var button = document.getElementById("share");
  if (!button || !navigator.share || !navigator.canShare || !window.fetch || !window.File) {
    return;
  }
  var type = button.dataset.type;
  var probe = new File([new Blob()], button.dataset.name, { type: type });
  if (!navigator.canShare({ files: [probe] })) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    fetch(button.dataset.src, { credentials: "same-origin" })
      .then(function (response) { return response.blob(); })
      .then(function (blob) {
        var file = new File([blob], button.dataset.name, { type: type });
        return navigator.share({ files: [file], title: button.dataset.title });
      })
      .catch(function () { /* cancelled, or not allowed: Download still works */ });
  });
})();
