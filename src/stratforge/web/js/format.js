// Numbers people can read: prices and price distances with the decimals of the instrument's
// tick size, money with its currency, exit parameters in price units, and a robust axis
// range for skewed values. Pure functions (no DOM), so they can be tested outside a browser.

export const DASH = "–";

function finite(x) { return x !== null && x !== undefined && x !== "" && Number.isFinite(Number(x)); }

// A number with exactly `digits` decimals and thousands separators ("–" when missing).
export function fixed(x, digits) {
  return finite(x) ? Number(x).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : DASH;
}

// A price or price distance with the instrument's decimals (market.price_decimals).
export function price(x, market) { return fixed(x, decimals(market)); }

export function decimals(market) {
  const d = market && Number.isInteger(market.price_decimals) ? market.price_decimals : 2;
  return Math.max(0, Math.min(10, d));
}

// Money: "1,234.50 USD" (two decimals, the instrument's currency).
export function money(x, market) {
  const text = fixed(x, 2);
  return text === DASH || !market || !market.currency ? text : `${text} ${market.currency}`;
}

// A column, axis or legend title naming its currency: "OOS PnL (USD)".
export function inCurrency(label, market) { return market && market.currency ? `${label} (${market.currency})` : label; }

// A d3 format (plotly hover and tick labels) for prices: ",.5f" for EURUSD.
export function priceFormat(market) { return `,.${decimals(market)}f`; }

// A distance in ticks written in price units: "0.00227 (227 ticks)".
export function ticksText(ticks, market) {
  if (!finite(ticks)) return DASH;
  const tick = market && Number(market.tick_size) > 0 ? Number(market.tick_size) : null;
  const count = `${fixed(ticks, Number.isInteger(Number(ticks)) ? 0 : 1)} ticks`;
  return tick ? `${price(Number(ticks) * tick, market)} (${count})` : count;
}

// One exit parameter as a trader reads it: distances in price units (and ticks), the
// widen threshold (already in price units) with the instrument's decimals, the hold in bars.
export function paramText(name, value, market) {
  if (!finite(value)) return `${name}=${value}`;
  const v = Number(value);
  if (name === "max_hold_bars") return `max hold ${fixed(v, 0)} bars`;
  if (name === "trail_widen_points") return `trail widen at ${price(v, market)}`;
  if (name.endsWith("_ticks")) return `${name.slice(0, -6).replace(/_/g, " ")} ${ticksText(v, market)}`;
  return `${name}=${+v.toFixed(4)}`;
}

// The simulator's order of the exit parameters (others follow in their own order).
export const PARAM_ORDER = ["stop_ticks", "target_ticks", "trail_tight_ticks", "trail_wide_ticks",
  "trail_widen_points", "trail_activation_ticks", "max_hold_bars"];

function ordered(params) {
  const rank = (k) => (PARAM_ORDER.includes(k) ? PARAM_ORDER.indexOf(k) : PARAM_ORDER.length);
  return Object.entries(params).sort((a, b) => rank(a[0]) - rank(b[0]));
}

// Every exit parameter with its ticks: "stop 0.00227 (227 ticks), ...".
export function paramsText(params, market) {
  return params ? ordered(params).map(([k, v]) => paramText(k, v, market)).join(", ") : DASH;
}

// The compact form for tables, price units only: "stop 0.00227, target 0.00450, ...".
export function paramsShort(params, market) {
  if (!params) return DASH;
  return ordered(params).map(([k, v]) => {
    if (!finite(v)) return `${k}=${v}`;
    if (k === "max_hold_bars") return `hold ${fixed(v, 0)} bars`;
    if (k === "trail_widen_points") return `widen at ${price(v, market)}`;
    const tick = market && Number(market.tick_size) > 0 ? Number(market.tick_size) : null;
    const label = k.replace(/^trail_/, "").replace(/_ticks$/, "").replace(/_/g, " ");
    return k.endsWith("_ticks") && tick ? `${label} ${price(Number(v) * tick, market)}` : `${k}=${+Number(v).toFixed(4)}`;
  }).join(", ");
}

// The q-quantile of numbers, the lower of the two values around it (numpy's
// method="lower"), so the largest value never moves it while q < (n - 1) / n.
export function lowerQuantile(values, q) {
  const xs = values.filter(finite).map(Number).sort((a, b) => a - b);
  if (!xs.length) return null;
  return xs[Math.floor((xs.length - 1) * q)];
}

export const CLIP_QUANTILE = 0.9;
export const CLIP_RATIO = 3;
export const CLIP_MIN_POINTS = 5;

// An axis range that one outlier cannot squash: with at least CLIP_MIN_POINTS values, when
// the largest is more than CLIP_RATIO times the CLIP_QUANTILE quantile (lowerQuantile), the
// axis ends at 1.25 x that quantile and the values above it are clipped (drawn at the edge).
// Returns {top, clipped, quantile} or null (no clip needed).
export function robustTop(values) {
  const xs = values.filter(finite).map(Number);
  if (xs.length < CLIP_MIN_POINTS) return null;
  const q = lowerQuantile(xs, CLIP_QUANTILE);
  const max = Math.max(...xs);
  if (!(q > 0) || max <= CLIP_RATIO * q) return null;
  const top = 1.25 * q;
  return { top, clipped: xs.filter((x) => x > top).length, quantile: CLIP_QUANTILE };
}

// A playbook strategy's `parameters` ({name: {ticks, price, yardsticks} | {bars}}) as text:
// "stop 0.00227 (227 ticks, 1.50 yardsticks)".
export function statedParamsText(parameters, market) {
  if (!parameters) return DASH;
  return Object.entries(parameters).map(([name, unit]) => {
    if (!unit || typeof unit !== "object") return `${name}=${unit}`;
    if ("bars" in unit) return `max hold ${fixed(unit.bars, 0)} bars`;
    const label = name.replace(/_(ticks|points)$/, "").replace(/_/g, " ");
    const ticks = finite(unit.ticks) ? `${fixed(unit.ticks, Number.isInteger(Number(unit.ticks)) ? 0 : 1)} ticks` : null;
    const sticks = finite(unit.yardsticks) ? `${fixed(unit.yardsticks, 2)} yardsticks` : null;
    const extra = [ticks, sticks].filter(Boolean).join(", ");
    return `${label} ${price(unit.price, market)}${extra ? ` (${extra})` : ""}`;
  }).join(", ");
}

// A resolved parameter range ({low_price, high_price, low_ticks, high_ticks} or
// {low_bars, high_bars}) as text in price units: "0.00150–0.00600".
export function rangeText(range, market) {
  if (!range) return DASH;
  if ("low_bars" in range) return `${fixed(range.low_bars, 0)}–${fixed(range.high_bars, 0)} bars`;
  return `${price(range.low_price, market)}–${price(range.high_price, market)}`;
}

// How a template or strategy trades: 0 fades the move on either side ("both"), +1 long, -1 short.
export function sideLabel(direction) {
  const d = Number(direction);
  return d === 0 ? "both" : d > 0 ? "long" : "short";
}
