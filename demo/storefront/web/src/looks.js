// How a product looks in the demo (the catalog stores no images): a monogram on a gradient per sku.
// No emoji or web fonts: it renders the same in every browser, including a bare headless one.

// By name, which the catalog, carts and orders all show (a cart line carries no sku).
const KNOWN = {
  'Aero Runner 2': { from: '#6366f1', to: '#22d3ee' },
  'Drift Hoodie': { from: '#f97316', to: '#facc15' },
  'Trail Cap': { from: '#059669', to: '#a3e635' },
  'Nimbus Socks (3-pack)': { from: '#db2777', to: '#a78bfa' },
  'Volt Dunk Low (limited drop)': { from: '#0f172a', to: '#ca8a04' },
};

function hash(text) {
  let n = 0;
  for (const ch of text) n = (n * 31 + ch.codePointAt(0)) >>> 0;
  return n;
}

function monogram(name) {
  const words = String(name || '?').replace(/\(.*?\)/g, '').split(/[\s-]+/).filter((w) => /[A-Za-z0-9]/.test(w));
  return (words.length > 1 ? words[0][0] + words[1][0] : (words[0] || '?').slice(0, 2)).toUpperCase();
}

/** Colours and monogram of a product (or a cart line): {name} is all it needs. */
export function lookOf(product) {
  const name = product.name || '';
  const n = hash(name);
  const hue = n % 360;
  const colors = KNOWN[name] || { from: `hsl(${hue} 65% 50%)`, to: `hsl(${(hue + 50) % 360} 75% 62%)` };
  return { ...colors, mark: monogram(product.name) };
}
