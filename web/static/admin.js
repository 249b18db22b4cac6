// Copy buttons and the commission unit: the only script of the admin page. Everything else works
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

  // A commission's unit follows its type (% or the currency); without
  // script the unit shown is the saved type's and the header names both.
  document.addEventListener('change', function (ev) {
    var sel = ev.target;
    if (!sel.name || !/(^|_)type$/.test(sel.name) || sel.name.indexOf('limit') >= 0) return;
    var row = sel.closest('tr') || sel.closest('.form-row');
    var unit = row && row.querySelector('.unit');
    var ref = document.getElementById('c-unit');
    if (unit && ref) unit.textContent = sel.value === 'fixed' ? ref.getAttribute('data-fixed') : '%';
  });

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
