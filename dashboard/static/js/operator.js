// Who is at the screen. Until staff accounts exist, the operator types their
// name once; it is remembered on this screen (localStorage) and sent as `by`
// with every acknowledge and resolve, which the server records in the
// alert's history.

const STORAGE_KEY = 'xingbei.operator';
let inMemory = null; // when localStorage is disabled (some kiosk profiles)

export function operatorName() {
  try {
    return window.localStorage.getItem(STORAGE_KEY) || inMemory;
  } catch (_) {
    return inMemory;
  }
}

export function setOperatorName(name) {
  inMemory = name;
  try {
    window.localStorage.setItem(STORAGE_KEY, name);
  } catch (_) {
    // Remembered for this page only.
  }
}
