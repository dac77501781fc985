// The "Copy" button next to the referral code. Progressive: without this script (or without
// the Clipboard API) the button stays hidden and the code is plain selectable text.
(function () {
  "use strict";
  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.dataset.copyTarget);
    var status = document.getElementById(button.dataset.copyStatus);
    if (!target || !navigator.clipboard) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () {
          status.textContent = button.dataset.copied; // in the page's language (data-copied)
        },
        function () {
          // Permission refused: select the code so that Ctrl+C / long press works.
          var range = document.createRange();
          range.selectNodeContents(target);
          window.getSelection().removeAllRanges();
          window.getSelection().addRange(range);
          status.textContent = button.dataset.copyFailed;
        }
      );
    });
  });
})();
