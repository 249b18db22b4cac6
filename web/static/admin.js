// Copy buttons: the only script of the admin page. Everything else works
// without JavaScript; the buttons stay hidden when it does not run.
(function () {
  'use strict';
  var buttons = document.querySelectorAll('[data-copy]');
  for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;

  function fallback(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    try { return document.execCommand('copy'); } catch (e) { return false; }
  }

  document.addEventListener('click', function (ev) {
    var button = ev.target.closest && ev.target.closest('[data-copy]');
    if (!button) return;
    var el = document.getElementById(button.getAttribute('data-copy'));
    if (!el) return;
    var label = button.getAttribute('data-label') || button.textContent;
    button.setAttribute('data-label', label);
    function done(ok) {
      button.textContent = ok ? 'Copied' : 'Select and copy';
      button.classList.toggle('copied', ok);
      setTimeout(function () { button.textContent = label; button.classList.remove('copied'); }, 1600);
    }
    var text = el.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(fallback(el)); });
    } else {
      done(fallback(el));
    }
  });
})();
