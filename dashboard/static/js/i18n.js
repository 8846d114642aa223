// All user-visible text of the dashboard, zh-CN first, English second.
//
// One dictionary so that a missing translation is easy to see (a test checks
// that both languages have the same keys) and so that no module hard-codes a
// sentence. Times are always shown in Asia/Shanghai, whatever time zone the
// big-screen PC is set to: staff compare them with the wall clock and with
// phone calls, not with UTC.

export const MESSAGES = {
  zh: {
    'app.title': '杏北社区 · 实时地图',
    'app.subtitle': '居家养老服务中心',
    'clock.label': '北京时间',
    'lang.toggle': 'English',
    'conn.label': '实时连接',
    'conn.open': '正常',
    'conn.connecting': '连接中',
    'conn.down': '断开',
    'conn.retry': '{s} 秒后重连',
    'count.online': '在线',
    'count.offline': '离线',
    'count.attention': '需关注',
    'count.total': '共 {n} 位老人',
    'list.title': '需关注的老人',
    'list.empty': '暂无需关注的老人',
    'list.more': '另有 {n} 位未列出',
    'card.title': '老人详情',
    'card.hint': '点击地图上的圆点或“需关注”列表中的老人查看详情',
    'card.close': '关闭',
    'field.device': '设备',
    'field.position': '最近位置',
    'field.hr': '心率',
    'field.spo2': '血氧',
    'field.bp': '血压',
    'field.temp': '体温',
    'field.rr': '呼吸',
    'field.steps': '步数',
    'field.battery': '电量',
    'field.worn': '佩戴',
    'field.event': '最近事件',
    'field.reasons': '关注原因',
    'unit.bpm': '次/分',
    'unit.rpm': '次/分',
    'unit.steps': '步',
    'value.none': '—',
    'value.worn': '已佩戴',
    'value.not_worn': '未佩戴',
    'value.online': '在线',
    'value.offline': '离线',
    'value.no_device': '未绑定设备',
    'value.acc': '精度 ±{m} 米',
    'src.gps': 'GPS',
    'src.wifi': 'Wi-Fi',
    'src.lbs': '基站',
    'src.beacon': '信标',
    'time.now': '刚刚',
    'time.s': '{n} 秒前',
    'time.m': '{n} 分钟前',
    'time.h': '{n} 小时前',
    'time.d': '{n} 天前',
    'reason.sos': 'SOS 求救',
    'reason.fall': '跌倒',
    'reason.hr_high': '心率过高',
    'reason.hr_low': '心率过低',
    'reason.spo2_low': '血氧偏低',
    'reason.offline': '设备离线',
    'reason.low_battery': '电量低',
    'reason.not_worn': '未佩戴',
    'event.sos': 'SOS 求救',
    'event.fall': '跌倒',
    'event.cancel': '老人已确认无事',
    'event.service': '申请服务',
    'event.off_wrist': '摘下设备',
    'event.on_wrist': '戴上设备',
    'event.low_battery': '电量低',
    'event.power_off': '关机',
    'legend.red': '需处置',
    'legend.notice': '提醒',
    'legend.offline': '离线',
    'legend.ok': '正常',
    'map.no_tiles': '未配置底图：仅显示社区轮廓与老人位置',
    'map.no_position': '暂无位置',
    'map.home': '回到社区',
    'error.load': '数据加载失败，正在重试…',
  },
  en: {
    'app.title': 'Xingbei Community · Live Map',
    'app.subtitle': 'Home-Care Service Centre',
    'clock.label': 'Beijing time',
    'lang.toggle': '中文',
    'conn.label': 'Live link',
    'conn.open': 'OK',
    'conn.connecting': 'connecting',
    'conn.down': 'down',
    'conn.retry': 'retry in {s} s',
    'count.online': 'Online',
    'count.offline': 'Offline',
    'count.attention': 'Attention',
    'count.total': '{n} elders in all',
    'list.title': 'Elders needing attention',
    'list.empty': 'No one needs attention',
    'list.more': '{n} more not listed',
    'card.title': 'Elder details',
    'card.hint': 'Click a dot on the map or an elder in the attention list to see details',
    'card.close': 'Close',
    'field.device': 'Device',
    'field.position': 'Last position',
    'field.hr': 'Heart rate',
    'field.spo2': 'SpO₂',
    'field.bp': 'Blood pressure',
    'field.temp': 'Temperature',
    'field.rr': 'Respiration',
    'field.steps': 'Steps',
    'field.battery': 'Battery',
    'field.worn': 'Worn',
    'field.event': 'Last event',
    'field.reasons': 'Attention',
    'unit.bpm': 'bpm',
    'unit.rpm': '/min',
    'unit.steps': 'steps',
    'value.none': '—',
    'value.worn': 'worn',
    'value.not_worn': 'not worn',
    'value.online': 'online',
    'value.offline': 'offline',
    'value.no_device': 'no device paired',
    'value.acc': '±{m} m',
    'src.gps': 'GPS',
    'src.wifi': 'Wi-Fi',
    'src.lbs': 'cell',
    'src.beacon': 'beacon',
    'time.now': 'just now',
    'time.s': '{n} s ago',
    'time.m': '{n} min ago',
    'time.h': '{n} h ago',
    'time.d': '{n} d ago',
    'reason.sos': 'SOS',
    'reason.fall': 'Fall',
    'reason.hr_high': 'High heart rate',
    'reason.hr_low': 'Low heart rate',
    'reason.spo2_low': 'Low SpO₂',
    'reason.offline': 'Device offline',
    'reason.low_battery': 'Low battery',
    'reason.not_worn': 'Not worn',
    'event.sos': 'SOS',
    'event.fall': 'Fall',
    'event.cancel': 'Elder pressed "I\'m OK"',
    'event.service': 'Service request',
    'event.off_wrist': 'Taken off',
    'event.on_wrist': 'Put on',
    'event.low_battery': 'Low battery',
    'event.power_off': 'Powered off',
    'legend.red': 'Act now',
    'legend.notice': 'Notice',
    'legend.offline': 'Offline',
    'legend.ok': 'Normal',
    'map.no_tiles': 'No base map configured: community outline and elders only',
    'map.no_position': 'No position yet',
    'map.home': 'Back to the community',
    'error.load': 'Could not load data, retrying…',
  },
};

const TIME_ZONE = 'Asia/Shanghai';
const STORAGE_KEY = 'xingbei.lang';
const listeners = [];

let current = pickInitialLang();

function pickInitialLang() {
  // zh-CN is the default for the service centre. A kiosk can be set up with
  // ?lang=en in its URL; otherwise the toggle's last choice on this screen.
  const fromUrl = new URLSearchParams(window.location.search).get('lang');
  if (fromUrl && MESSAGES[fromUrl]) return fromUrl;
  try {
    const saved = window.localStorage.getItem(STORAGE_KEY);
    if (saved && MESSAGES[saved]) return saved;
  } catch (_) {
    // localStorage can be disabled (kiosk profiles); fall through.
  }
  return 'zh';
}

export function lang() {
  return current;
}

export function setLang(next) {
  if (!MESSAGES[next] || next === current) return;
  current = next;
  try {
    window.localStorage.setItem(STORAGE_KEY, next);
  } catch (_) {
    // Not remembered; still switched for this page.
  }
  applyStatic(document);
  listeners.forEach((fn) => fn(next));
}

export function onLangChange(fn) {
  listeners.push(fn);
}

// Look up a key; `{name}` placeholders are filled from params. A missing key
// shows the key itself, which is ugly on purpose so it gets noticed.
export function t(key, params) {
  const text = MESSAGES[current][key] ?? MESSAGES.zh[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

// Codes from the API (attention reasons, event types, fix sources) shown in
// words. An unknown code is shown as is rather than hidden: hiding a reason
// would hide an alarm.
export function codeLabel(prefix, code) {
  const key = `${prefix}.${code}`;
  return key in MESSAGES.zh ? t(key) : String(code);
}

export const reasonLabel = (code) => codeLabel('reason', code);
export const eventLabel = (type) => codeLabel('event', type);

// Fill every element that carries data-i18n (text) or data-i18n-title.
export function applyStatic(root) {
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
  root.querySelectorAll('[data-i18n]').forEach((el) => {
    el.textContent = t(el.dataset.i18n);
  });
  root.querySelectorAll('[data-i18n-title]').forEach((el) => {
    el.title = t(el.dataset.i18nTitle);
  });
}

// Formatters are built once per language: Intl constructors are slow enough
// to matter when the attention list re-renders every second.
const formatters = {};
function fmt(kind) {
  const key = `${current}:${kind}`;
  if (!formatters[key]) {
    const locale = current === 'zh' ? 'zh-CN' : 'en-GB';
    const opts = { timeZone: TIME_ZONE, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };
    if (kind === 'date') Object.assign(opts, { year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters[key] = new Intl.DateTimeFormat(locale, opts);
  }
  return formatters[key];
}

// Wall-clock time in Asia/Shanghai; the date is added when asked for or when
// the moment is not today in Shanghai (an old fix must not look recent).
export function formatClock(ms, { withDate = false, nowMs = Date.now() } = {}) {
  if (ms == null || Number.isNaN(ms)) return t('value.none');
  const sameDay = shanghaiDay(ms) === shanghaiDay(nowMs);
  return (withDate || !sameDay ? fmt('date') : fmt('time')).format(new Date(ms));
}

// Shanghai has had no daylight saving since 1991: a fixed UTC+8 offset gives
// the calendar day without calling Intl for every row.
function shanghaiDay(ms) {
  return Math.floor((ms + 8 * 3600 * 1000) / 86400000);
}

// "3 分钟前" / "3 min ago". nowMs is the server's clock as estimated by the
// client (see store.js), so a big-screen PC with a wrong clock still shows
// honest ages. A small negative age (clock jitter) counts as "just now".
export function formatAgo(ms, nowMs) {
  if (ms == null || Number.isNaN(ms)) return t('value.none');
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 5) return t('time.now');
  if (s < 60) return t('time.s', { n: s });
  if (s < 3600) return t('time.m', { n: Math.floor(s / 60) });
  if (s < 86400) return t('time.h', { n: Math.floor(s / 3600) });
  return t('time.d', { n: Math.floor(s / 86400) });
}
