// text.js - code point <-> UTF-16 offsets in JS strings.
//
// The CRDT and the protocol count Unicode code points; JS strings and editors
// (CodeMirror) count UTF-16 units. A character outside the BMP (most emoji)
// is one code point and two units. Both functions are O(offset) but skip the
// scan entirely when the string has no surrogate pairs.

const SURROGATE = /[\uD800-\uDFFF]/;

export function hasSurrogates(s) {
	return SURROGATE.test(s);
}

// The UTF-16 offset of code point offset `cp` in `s` (clamped to the end).
export function cpToUtf16(s, cp, plain = !hasSurrogates(s)) {
	if (plain) return Math.min(cp, s.length);
	let u = 0;
	for (let n = 0; n < cp && u < s.length; n++) {
		const c = s.charCodeAt(u);
		u += c >= 0xd800 && c <= 0xdbff && u + 1 < s.length ? 2 : 1;
	}
	return u;
}

// The code point offset of UTF-16 offset `u` in `s`. An offset in the middle
// of a surrogate pair counts the pair as before it.
export function utf16ToCp(s, u, plain = !hasSurrogates(s)) {
	if (plain) return Math.min(u, s.length);
	let cp = 0;
	for (let i = 0; i < u && i < s.length; cp++) {
		const c = s.charCodeAt(i);
		i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
	}
	return cp;
}

// Number of code points in s.
export function cpLength(s) {
	if (!hasSurrogates(s)) return s.length;
	let n = 0;
	for (const _ of s) n++;
	return n;
}
