/* Copy buttons of the one-time secret page: <button class="ciam-otp-copy" data-copy-target="ID">.
 * Uses the asynchronous Clipboard API where the page is a secure context, and falls back to
 * selecting the text and execCommand("copy") elsewhere (plain-HTTP admin sites). On success the
 * button gets data-copied="true"; on failure the text stays selected for Ctrl+C. */
"use strict";
(function () {
    function selectContents(element) {
        const range = document.createRange();
        range.selectNodeContents(element);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
    }

    function copyBySelection(element) {
        selectContents(element);
        try {
            return document.execCommand("copy");
        } catch (error) {
            return false;
        }
    }

    function report(button, copied) {
        button.dataset.copied = copied ? "true" : "false";
        button.textContent = copied ? button.dataset.labelCopied : button.dataset.labelFailed;
    }

    document.addEventListener("click", function (event) {
        const button = event.target.closest("button.ciam-otp-copy");
        if (!button) {
            return;
        }
        const target = document.getElementById(button.dataset.copyTarget);
        if (!target) {
            return;
        }
        const text = target.textContent.trim();
        if (navigator.clipboard && window.isSecureContext) {
            navigator.clipboard.writeText(text).then(
                function () { report(button, true); },
                function () { report(button, copyBySelection(target)); }
            );
        } else {
            report(button, copyBySelection(target));
        }
    });
})();
