// Triggers in plain words: "every Monday at 09:00 Europe/Berlin". Covers the common crontab
// shapes and falls back to the expression itself for anything else.

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const DAY_NAMES = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const MONTH_NAMES = { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 };

const pad = (n) => String(n).padStart(2, '0');

function list(items) {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

function ordinal(n) {
  const s = ['th', 'st', 'nd', 'rd'];
  const v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

/** Expands a field of plain numbers, lists and ranges ("1-5", "9,13,17"); null for anything else. */
function values(field, min, max, names) {
  const out = [];
  for (const part of field.split(',')) {
    const m = /^([a-z0-9]+)(?:-([a-z0-9]+))?$/i.exec(part);
    if (!m) return null;
    const read = (t) => {
      if (t === undefined) return undefined;
      const lower = t.toLowerCase();
      if (names && lower in names) return names[lower];
      return /^\d+$/.test(t) ? Number(t) : NaN;
    };
    const a = read(m[1]);
    const b = m[2] === undefined ? a : read(m[2]);
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < min || b > max || a > b) return null;
    for (let i = a; i <= b; i += 1) out.push(i);
  }
  return out;
}

function daysInWords(field) {
  const v = values(field, 0, 7, DAY_NAMES);
  if (!v) return null;
  const set = [...new Set(v.map((d) => d % 7))].sort((a, b) => a - b);
  const key = set.join(',');
  if (key === '1,2,3,4,5') return 'every weekday (Monday to Friday)';
  if (key === '0,6') return 'every Saturday and Sunday';
  if (key === '0,1,2,3,4,5,6') return 'every day';
  // Monday first reads better.
  set.sort((a, b) => ((a + 6) % 7) - ((b + 6) % 7));
  return `every ${list(set.map((d) => DAYS[d]))}`;
}

function timesInWords(minute, hour) {
  const mins = values(minute, 0, 59);
  const hours = values(hour, 0, 23);
  if (!mins || !hours) return null;
  if (mins.length * hours.length > 6) return null;
  const times = [];
  for (const hh of hours) for (const mm of mins) times.push(`${pad(hh)}:${pad(mm)}`);
  return `at ${list(times)}`;
}

/** A 5-field (or 6-field with seconds first) crontab expression in words, or null. */
export function cronToWords(expr) {
  if (typeof expr !== 'string') return null;
  let f = expr.trim().split(/\s+/);
  if (f.length === 6) {
    if (f[0] !== '0') return null;
    f = f.slice(1);
  }
  if (f.length !== 5) return null;
  const [minute, hour, dom, month, dow] = f;
  const anyDay = dom === '*' && month === '*' && (dow === '*' || dow === '?');

  if (f.every((x) => x === '*')) return 'every minute';
  let m = /^\*\/(\d+)$/.exec(minute);
  if (m && hour === '*' && anyDay) return Number(m[1]) === 1 ? 'every minute' : `every ${m[1]} minutes`;
  if (/^\d+$/.test(minute) && hour === '*' && anyDay) {
    return Number(minute) === 0 ? 'every hour, on the hour' : `every hour at ${pad(minute)} minutes past`;
  }
  m = /^\*\/(\d+)$/.exec(hour);
  if (m && /^\d+$/.test(minute) && anyDay) {
    const every = Number(m[1]) === 1 ? 'every hour' : `every ${m[1]} hours`;
    return Number(minute) === 0 ? `${every}, on the hour` : `${every} at ${pad(minute)} minutes past`;
  }

  const at = timesInWords(minute, hour);
  if (!at) return null;
  if (anyDay) return `every day ${at}`;
  if (dom === '*' && month === '*') {
    const days = daysInWords(dow);
    return days ? `${days} ${at}` : null;
  }
  if (dow === '*' || dow === '?') {
    const d = values(dom, 1, 31);
    if (!d) return null;
    const on = `on the ${list(d.map(ordinal))}`;
    if (month === '*') return `${on} of every month ${at}`;
    const mo = values(month, 1, 12, MONTH_NAMES);
    if (!mo) return null;
    return `every year ${on} of ${list(mo.map((x) => MONTHS[x - 1]))} ${at}`;
  }
  return null;
}

const UNITS = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week' };

/** "1h30m" → "every 1 hour 30 minutes". */
export function intervalToWords(text) {
  const parts = [...String(text).matchAll(/(\d+)\s*([smhdw])/gi)];
  if (!parts.length || parts.map((p) => p[0]).join('').replace(/\s/g, '') !== String(text).replace(/\s/g, '')) {
    return `every ${text}`;
  }
  const words = parts.map(([, n, u]) => {
    const unit = UNITS[u.toLowerCase()];
    return Number(n) === 1 ? `1 ${unit}` : `${n} ${unit}s`;
  });
  if (words.length === 1 && words[0].startsWith('1 ')) return `every ${words[0].slice(2)}`;
  return `every ${words.join(' ')}`;
}

/** Any trigger (the API's TriggerBody) in words. */
export function triggerToWords(trigger, fallback = '') {
  if (!trigger || typeof trigger !== 'object') return fallback || 'unknown trigger';
  if (trigger.cron) {
    const words = cronToWords(trigger.cron);
    const tz = trigger.timezone || 'UTC';
    return words ? `${words} ${tz}` : `cron “${trigger.cron}” ${tz}`;
  }
  if (trigger.interval) return intervalToWords(trigger.interval);
  if (trigger.at) {
    const d = new Date(trigger.at);
    const when = Number.isNaN(d.getTime())
      ? trigger.at
      : new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' }).format(d);
    return `once, on ${when}`;
  }
  if (trigger.webhook) return 'when a webhook delivery arrives';
  if (trigger.after) return `after “${trigger.after}” succeeds`;
  if (trigger.manual) return 'only when run by hand';
  return fallback || 'unknown trigger';
}
