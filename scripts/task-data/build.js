// Builds the task data sets of scripts/fetch-task-data.sh as JSON lines (SPEC section 3):
//   node build.js spam SPAM_DATA_DIR OUT_DIR
//   node build.js debian OUT_DIR MIN_SECTION_COUNT PACKAGES_TEXT... -- TRANSLATION_TEXT...
// Written for node (on the machine, no build step, exact byte handling and JSON encoding);
// the shell script fetches, verifies and installs, this file only turns inputs into lines.
//
// Splits are fixed forever by a hash of the text: the first 4 bytes of SHA-256(text) as a
// big-endian integer, mod 100: 0-79 train, 80-89 validation, 90-99 test.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

function split_of(text) {
  const h = crypto.createHash('sha256').update(text, 'utf8').digest();
  const r = h.readUInt32BE(0) % 100;
  return r < 80 ? 'train' : r < 90 ? 'validation' : 'test';
}

// Keeps one record per distinct key text; a text seen with two different targets is dropped
// (it cannot be labelled consistently). Returns [records, dropped_conflicts, duplicates].
function dedupe(records, key, target) {
  const seen = new Map();
  let duplicates = 0;
  for (const r of records) {
    const k = r[key];
    const prev = seen.get(k);
    if (prev === undefined) { seen.set(k, r); continue; }
    duplicates++;
    if (prev !== null && prev[target] !== r[target]) seen.set(k, null);
  }
  const kept = [...seen.values()].filter((r) => r !== null);
  const conflicts = [...seen.values()].length - kept.length;
  return [kept, conflicts, duplicates];
}

// Writes NAME.{train,validation,test}.jsonl in out_dir, records sorted by their key so the
// files are byte-identical from run to run; returns the count per split.
function write_splits(out_dir, name, records, key, fields) {
  const parts = { train: [], validation: [], test: [] };
  records.sort((a, b) => (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0));
  for (const r of records) {
    const o = {};
    for (const f of fields) o[f] = r[f];
    parts[split_of(r[key])].push(JSON.stringify(o));
  }
  const counts = {};
  for (const [s, lines] of Object.entries(parts)) {
    fs.writeFileSync(path.join(out_dir, `${name}.${s}.jsonl`), lines.map((l) => l + '\n').join(''));
    counts[s] = lines.length;
  }
  return counts;
}

function label_counts(records, field) {
  const c = {};
  for (const r of records) c[r[field]] = (c[r[field]] || 0) + 1;
  return Object.fromEntries(Object.entries(c).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
}

// SpamAssassin: every data/GROUP/*.txt read as bytes and decoded as UTF-8 by node's decoder
// (an invalid byte sequence becomes U+FFFD), so the text is the email with nothing else lost.
function build_spam(data_dir, out_dir) {
  const groups = fs.readdirSync(data_dir).filter((g) => fs.statSync(path.join(data_dir, g)).isDirectory()).sort();
  const two = [], three = [];
  let replaced = 0;
  for (const g of groups) {
    const kind = g.startsWith('easy-ham') ? 'easy_ham' : g.startsWith('hard-ham') ? 'hard_ham' :
      g.startsWith('spam') ? 'spam' : null;
    if (!kind) throw new Error(`unknown SpamAssassin group ${g}`);
    for (const f of fs.readdirSync(path.join(data_dir, g)).filter((x) => x.endsWith('.txt')).sort()) {
      const bytes = fs.readFileSync(path.join(data_dir, g, f));
      const text = bytes.toString('utf8');
      if (!Buffer.from(text, 'utf8').equals(bytes)) replaced++;
      two.push({ text, label: kind === 'spam' ? 'spam' : 'ham' });
      three.push({ text, label: kind });
    }
  }
  const summary = { emails: two.length, emails_with_invalid_utf8: replaced };
  for (const [name, recs] of [['spam2', two], ['spam3', three]]) {
    const [kept, conflicts, duplicates] = dedupe(recs, 'text', 'label');
    summary[name] = {
      duplicates_removed: duplicates, conflicting_texts_dropped: conflicts,
      labels: label_counts(kept, 'label'),
      splits: write_splits(out_dir, name, kept, 'text', ['text', 'label']),
    };
  }
  return summary;
}

// Debian control-file paragraphs -> objects of field -> value (continuation lines kept raw).
function paragraphs(text) {
  const out = [];
  for (const para of text.split(/\n\s*\n/)) {
    const o = {};
    let last = null;
    for (const line of para.split('\n')) {
      if (line === '') continue;
      if (line[0] === ' ' || line[0] === '\t') { if (last) o[last] += '\n' + line; continue; }
      const i = line.indexOf(':');
      if (i < 0) continue;
      last = line.slice(0, i);
      o[last] = line.slice(i + 1).trim();
    }
    if (Object.keys(o).length) out.push(o);
  }
  return out;
}

// A Description-en value: first line the synopsis, then the long description, each line
// with its one leading space removed and " ." lines as paragraph breaks (Debian Policy 5.6.13).
function split_description(value) {
  const lines = value.split('\n');
  const synopsis = lines[0].trim();
  const body = lines.slice(1).map((l) => l.replace(/^[ \t]/, '')).map((l) => (l.trim() === '.' ? '' : l));
  return [synopsis, body.join('\n').trim()];
}

function build_debian(out_dir, min_count, package_files, translation_files) {
  // Package -> section (a later list file overrides an earlier one: updates, security).
  const by_md5 = new Map();  // Description-md5 -> [synopsis, long]
  for (const f of translation_files)
    for (const p of paragraphs(fs.readFileSync(f, 'utf8')))
      if (p['Description-md5'] && p['Description-en']) by_md5.set(p['Description-md5'], split_description(p['Description-en']));
  const pkgs = new Map();
  for (const f of package_files)
    for (const p of paragraphs(fs.readFileSync(f, 'utf8')))
      if (p.Package && p.Section && p['Description-md5']) pkgs.set(p.Package, p);
  const cls = [], sum = [];
  let no_description = 0;
  for (const p of [...pkgs.values()]) {
    const d = by_md5.get(p['Description-md5']);
    if (!d || !d[1]) { no_description++; continue; }
    const section = p.Section.includes('/') ? p.Section.split('/').pop() : p.Section;
    cls.push({ text: d[1], label: section });
    sum.push({ document: d[1], summary: d[0] });
  }
  const [ckept, cconf, cdup] = dedupe(cls, 'text', 'label');
  const raw = label_counts(ckept, 'label');
  const merged = Object.entries(raw).filter(([, n]) => n < min_count).map(([s]) => s).sort();
  for (const r of ckept) if (raw[r.label] < min_count) r.label = 'other';
  const [skept, sconf, sdup] = dedupe(sum, 'document', 'summary');
  return {
    packages: pkgs.size, packages_without_long_description: no_description,
    section: {
      duplicates_removed: cdup, conflicting_texts_dropped: cconf,
      min_section_count: min_count, merged_into_other: merged,
      labels: label_counts(ckept, 'label'),
      splits: write_splits(out_dir, 'debian-section', ckept, 'text', ['text', 'label']),
    },
    synopsis: {
      duplicates_removed: sdup, conflicting_documents_dropped: sconf,
      splits: write_splits(out_dir, 'debian-synopsis', skept, 'document', ['document', 'summary']),
    },
  };
}

const [mode, ...args] = process.argv.slice(2);
let summary;
if (mode === 'spam') {
  summary = build_spam(args[0], args[1]);
  fs.writeFileSync(path.join(args[1], 'spam.summary.json'), JSON.stringify(summary, null, 1) + '\n');
} else if (mode === 'debian') {
  const [out_dir, min_count, ...files] = args;
  const sep = files.indexOf('--');
  summary = build_debian(out_dir, Number(min_count), files.slice(0, sep), files.slice(sep + 1));
  fs.writeFileSync(path.join(out_dir, 'debian.summary.json'), JSON.stringify(summary, null, 1) + '\n');
} else {
  throw new Error('usage: build.js spam DATA OUT | debian OUT MIN PACKAGES... -- TRANSLATIONS...');
}
