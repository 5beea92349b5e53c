// The print button on a case summary (no inline scripts: the Content-Security-Policy allows only this file).
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("print-page");
  if (button) { button.addEventListener("click", function () { window.print(); }); }
});
