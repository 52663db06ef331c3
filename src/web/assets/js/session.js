// Where the credential is kept: the browser tab's session storage by default (gone when the tab closes), or the
// device's local storage when the user ticks "Remember on this device". Never in a cookie or a URL.

const KEY = 'camera-service.credential';

function read(storage) {
  try {
    const raw = storage.getItem(KEY);
    const v = raw && JSON.parse(raw);
    return v && typeof v.token === 'string' && v.token ? v : null;
  } catch {
    return null;
  }
}

/** The stored credential {token, type, remember}, if any. */
export function loadCredential() {
  return read(sessionStorage) || read(localStorage);
}

export function saveCredential(token, type, remember) {
  clearCredential();
  const value = JSON.stringify({ token, type, remember: !!remember });
  try {
    (remember ? localStorage : sessionStorage).setItem(KEY, value);
  } catch {
    // Storage may be disabled (private mode): the page still works until it is reloaded.
  }
}

export function clearCredential() {
  try {
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
  } catch {
    // Nothing stored.
  }
}
