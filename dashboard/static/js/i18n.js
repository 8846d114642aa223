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
    'legend.warn': '需留意',
    'alerts.title': '警报',
    'alerts.tab.active': '当前警报',
    'alerts.tab.recent': '最近处理',
    'alerts.tab.stats': '误报率',
    'alerts.empty': '暂无未处理的警报',
    'alerts.recent_empty': '暂无最近处理的警报',
    'alerts.more': '另有 {n} 条未列出',
    'alerts.count': '×{n}',
    'alerts.count_title': '同一警报已触发 {n} 次',
    'alerts.ack': '确认',
    'alerts.resolve': '处理完毕…',
    'alerts.acked_by': '{name} 已确认',
    'alerts.resolved_by': '{name} · {outcome}',
    'alerts.cleared': '状况已恢复',
    'alerts.escalation': '已通知：{level}',
    'alerts.ack_done': '已确认：{name} {kind}',
    'alerts.resolve_done': '已处理：{name} {kind}（{outcome}）',
    'alerts.conflict': '该警报已由他人处理（当前：{state}），列表已刷新',
    'alerts.not_found': '该警报不存在，列表已刷新',
    'alerts.failed': '操作未成功，请重试（{reason}）',
    'alerts.load_failed': '警报加载失败，正在重试…',
    'detail.title': '警报详情',
    'detail.close': '关闭',
    'detail.loading': '加载中…',
    'detail.failed': '详情加载失败',
    'detail.kind': '类型',
    'detail.severity': '级别',
    'detail.state': '状态',
    'detail.first': '首次发生',
    'detail.last': '最近一次',
    'detail.count': '次数',
    'detail.escalation': '通知到',
    'detail.value': '数值',
    'detail.ack': '确认',
    'detail.resolved': '处理',
    'detail.note': '备注',
    'detail.history': '处理记录',
    'detail.readings': '前后 15 分钟的读数',
    'detail.no_readings': '这段时间没有读数',
    'detail.readings_more': '仅显示最接近警报的 {n} 条',
    'detail.col.time': '时间',
    'detail.col.other': '位置 / 事件',
    'detail.col.hr': '心率',
    'detail.col.spo2': '血氧',
    'detail.col.bp': '血压',
    'detail.col.temp': '体温',
    'detail.col.rr': '呼吸',
    'detail.col.steps': '步数',
    'detail.col.battery': '电量',
    'detail.position': '位置 {acc}{src}',
    'detail.event': '事件：{event}',
    'actor.system': '系统',
    'severity.critical': '危急',
    'severity.high': '高',
    'severity.medium': '中',
    'severity.low': '低',
    'state.open': '未处理',
    'state.acknowledged': '已确认',
    'state.resolved': '已解决',
    'kind.sos': '紧急呼救',
    'kind.fall': '跌倒',
    'kind.news2_hr': '心率异常',
    'kind.hr_activity': '静息心率偏快',
    'kind.news2_spo2': '血氧偏低',
    'kind.news2_sbp': '血压异常',
    'kind.news2_rr': '呼吸频率异常',
    'kind.news2_temp': '体温异常',
    'kind.news2_partial': 'NEWS2 综合评分（部分）',
    'kind.baseline_drift': '个人基线偏移',
    'kind.geofence_exit': '离开安全区域',
    'kind.inactivity': '长时间未活动',
    'kind.device_offline': '设备离线',
    'kind.not_worn': '未佩戴',
    'kind.low_battery': '电量低',
    'outcome.handled': '已处理',
    'outcome.false_alarm': '误报',
    'outcome.hospital': '送医',
    'outcome.transferred': '转介',
    'outcome.no_action': '无需处理',
    'outcome.duplicate': '重复',
    'outcome.self_cleared': '自行恢复',
    'outcome.withdrawn': '老人已取消',
    'escalation.0': '值班人员',
    'escalation.1': '主管',
    'escalation.2': '家属',
    'escalation.3': '紧急电话',
    'action.opened': '警报产生',
    'action.repeated': '再次触发',
    'action.escalated': '升级通知',
    'action.acknowledged': '确认',
    'action.resolved': '解决',
    'action.cleared': '状况恢复',
    'action.suppressed': '冷却期内重复（未提醒）',
    'action.emergency_order_requested': '已申请助急服务',
    'action.emergency_order_failed': '助急服务申请失败',
    'stats.rule': '规则',
    'stats.resolved': '已解决',
    'stats.false': '误报',
    'stats.rate': '误报率',
    'stats.by_elder': '误报最多的老人',
    'stats.empty': '还没有已处理的警报',
    'stats.hint': '误报率 = 误报 ÷ 人工处理的警报（不含自行恢复与老人取消）',
    'stats.failed': '统计加载失败',
    'sound.enable': '启用声音',
    'sound.enable_title': '浏览器需要点击一次才允许播放警报声',
    'sound.mute': '静音',
    'sound.muted': '已静音',
    'sound.mute_title': '静音当前警报声；新的危急警报仍会响',
    'sound.on': '声音已开启',
    'operator.label': '值班',
    'operator.none': '未登记',
    'operator.change': '更换值班人员',
    'operator.title': '值班人员',
    'operator.prompt': '请输入您的姓名，确认和处理警报时记录在案（本机记住）',
    'operator.placeholder': '姓名',
    'resolve.title': '处理警报',
    'resolve.outcome': '处理结果',
    'resolve.note': '备注（可选）',
    'resolve.by': '处理人：{name}',
    'dialog.ok': '确定',
    'dialog.cancel': '取消',
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
    'legend.warn': 'Watch',
    'alerts.title': 'Alerts',
    'alerts.tab.active': 'Active',
    'alerts.tab.recent': 'Handled',
    'alerts.tab.stats': 'False alarms',
    'alerts.empty': 'No active alerts',
    'alerts.recent_empty': 'Nothing handled recently',
    'alerts.more': '{n} more not listed',
    'alerts.count': '×{n}',
    'alerts.count_title': 'Triggered {n} times',
    'alerts.ack': 'Acknowledge',
    'alerts.resolve': 'Resolve…',
    'alerts.acked_by': 'acknowledged by {name}',
    'alerts.resolved_by': '{name} · {outcome}',
    'alerts.cleared': 'condition cleared',
    'alerts.escalation': 'notified: {level}',
    'alerts.ack_done': 'Acknowledged: {name} {kind}',
    'alerts.resolve_done': 'Resolved: {name} {kind} ({outcome})',
    'alerts.conflict': 'Someone else already handled this alert (now: {state}); list refreshed',
    'alerts.not_found': 'This alert no longer exists; list refreshed',
    'alerts.failed': 'That did not work, please try again ({reason})',
    'alerts.load_failed': 'Could not load alerts, retrying…',
    'detail.title': 'Alert details',
    'detail.close': 'Close',
    'detail.loading': 'Loading…',
    'detail.failed': 'Could not load the details',
    'detail.kind': 'Kind',
    'detail.severity': 'Severity',
    'detail.state': 'State',
    'detail.first': 'First seen',
    'detail.last': 'Last seen',
    'detail.count': 'Times',
    'detail.escalation': 'Notified',
    'detail.value': 'Value',
    'detail.ack': 'Acknowledged',
    'detail.resolved': 'Resolved',
    'detail.note': 'Note',
    'detail.history': 'History',
    'detail.readings': 'Readings 15 min either side',
    'detail.no_readings': 'No readings in that time',
    'detail.readings_more': 'Only the {n} closest to the alert are shown',
    'detail.col.time': 'Time',
    'detail.col.other': 'Position / event',
    'detail.col.hr': 'HR',
    'detail.col.spo2': 'SpO₂',
    'detail.col.bp': 'BP',
    'detail.col.temp': 'Temp',
    'detail.col.rr': 'RR',
    'detail.col.steps': 'Steps',
    'detail.col.battery': 'Batt.',
    'detail.position': 'position {acc}{src}',
    'detail.event': 'event: {event}',
    'actor.system': 'system',
    'severity.critical': 'critical',
    'severity.high': 'high',
    'severity.medium': 'medium',
    'severity.low': 'low',
    'state.open': 'open',
    'state.acknowledged': 'acknowledged',
    'state.resolved': 'resolved',
    'kind.sos': 'SOS call',
    'kind.fall': 'Fall',
    'kind.news2_hr': 'Abnormal heart rate',
    'kind.hr_activity': 'Fast resting heart rate',
    'kind.news2_spo2': 'Low SpO₂',
    'kind.news2_sbp': 'Abnormal blood pressure',
    'kind.news2_rr': 'Abnormal respiration rate',
    'kind.news2_temp': 'Abnormal temperature',
    'kind.news2_partial': 'NEWS2 aggregate (partial)',
    'kind.baseline_drift': 'Drift from personal baseline',
    'kind.geofence_exit': 'Left the safe zone',
    'kind.inactivity': 'Inactive for long',
    'kind.device_offline': 'Device offline',
    'kind.not_worn': 'Not worn',
    'kind.low_battery': 'Low battery',
    'outcome.handled': 'handled',
    'outcome.false_alarm': 'false alarm',
    'outcome.hospital': 'sent to hospital',
    'outcome.transferred': 'transferred',
    'outcome.no_action': 'no action needed',
    'outcome.duplicate': 'duplicate',
    'outcome.self_cleared': 'cleared by itself',
    'outcome.withdrawn': 'cancelled by the elder',
    'escalation.0': 'on duty',
    'escalation.1': 'supervisor',
    'escalation.2': 'family',
    'escalation.3': 'emergency no.',
    'action.opened': 'opened',
    'action.repeated': 'triggered again',
    'action.escalated': 'escalated',
    'action.acknowledged': 'acknowledged',
    'action.resolved': 'resolved',
    'action.cleared': 'condition cleared',
    'action.suppressed': 'repeat within cool-down (no reminder)',
    'action.emergency_order_requested': 'emergency service requested',
    'action.emergency_order_failed': 'emergency service request failed',
    'stats.rule': 'Rule',
    'stats.resolved': 'Resolved',
    'stats.false': 'False',
    'stats.rate': 'Rate',
    'stats.by_elder': 'Elders with the most false alarms',
    'stats.empty': 'No handled alerts yet',
    'stats.hint': 'False-alarm rate = false alarms ÷ alerts judged by a person (not those that cleared by themselves or the elder cancelled)',
    'stats.failed': 'Could not load the statistics',
    'sound.enable': 'Enable sound',
    'sound.enable_title': 'The browser needs one click before it may play the alarm',
    'sound.mute': 'Mute',
    'sound.muted': 'Muted',
    'sound.mute_title': 'Silence the alarms ringing now; a new critical alert still sounds',
    'sound.on': 'Sound on',
    'operator.label': 'On duty',
    'operator.none': 'not set',
    'operator.change': 'Change who is on duty',
    'operator.title': 'Staff on duty',
    'operator.prompt': 'Your name, recorded when you acknowledge or resolve alerts (remembered on this screen)',
    'operator.placeholder': 'Name',
    'resolve.title': 'Resolve alert',
    'resolve.outcome': 'Outcome',
    'resolve.note': 'Note (optional)',
    'resolve.by': 'By: {name}',
    'dialog.ok': 'OK',
    'dialog.cancel': 'Cancel',
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
export const kindLabel = (kind) => codeLabel('kind', kind);
export const severityLabel = (sev) => codeLabel('severity', sev);
export const stateLabel = (state) => codeLabel('state', state);
export const outcomeLabel = (outcome) => codeLabel('outcome', outcome);
export const escalationLabel = (level) => codeLabel('escalation', level);

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
