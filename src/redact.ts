/**
 * Password redaction for anything that may reach output, logs or errors.
 * Every URL shown by shardkit goes through `redactUrl`; free text that may
 * embed a URL (a driver's error message) goes through `redactText`.
 */

const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@/?#\s]*)(@)/gi

/** `mysql://root:secret@h:3306/db` -> `mysql://root:***@h:3306/db`. Unparseable input is redacted by pattern. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password === '') return url
    u.password = '***'
    return u.toString()
  } catch {
    return redactText(url)
  }
}

/** Replaces the password of every `scheme://user:password@` in a text, and any given secret values. */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(URL_PASSWORD, '$1***$3')
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join('***')
  return out
}
