// How Hindsight writes durations, in the browser: the rules of projections/drafts/formats.py
// (one formatter for the CLI, the drafts and these pages; tests/projections/test_formats.py
// runs both on the same values). Rounded to the nearest second, halves up; every unit that
// is not zero, largest first ("52 min 1 s", "1 h 45 s", "3 d 2 h"); under half a second,
// three significant digits ("0.118 s"); zero "0 s"; negative "−5 s"; unknown "–".
"use strict";

(function (root) {
  const UNITS = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];

  function significant(value) {
    return String(Number(value.toPrecision(3)));
  }

  function duration(total) {
    if (total === null || total === undefined || Number.isNaN(total)) return "–";
    const sign = total < 0 ? "−" : "";
    const size = Math.abs(total);
    let rest = Math.floor(size + 0.5);
    if (rest === 0) return size === 0 ? "0 s" : sign + significant(size) + " s";
    const parts = [];
    for (const [unitSize, unit] of UNITS) {
      const amount = Math.floor(rest / unitSize);
      rest -= amount * unitSize;
      if (amount) parts.push(amount + " " + unit);
    }
    return sign + parts.join(" ");
  }

  function plural(count, word, words) {
    return count.toLocaleString("en") + " " + (count === 1 ? word : (words || word + "s"));
  }

  const api = { duration: duration, plural: plural };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.HindsightFormat = api;
})(this);
