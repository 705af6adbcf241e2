// Names that come from input and become paths, file lines or log fields: nodes, groups, tags,
// levels. One place decides what is acceptable, so no caller can forget a case.

export type NameKind = 'node' | 'group' | 'tag' | 'level';

const NODE_NAME = /^[A-Za-z0-9._-]{1,63}$/;

/** Why `name` is not acceptable as a `kind`, or null when it is. */
export function nameProblem(kind: NameKind, name: string): string | null {
  if (name === '') return 'is empty';
  if (name === '.' || name === '..') return `must not be "${name}"`;
  // A node name becomes a folder under DIR/nodes and a hostname-like label: the strict set.
  if (kind === 'node') return NODE_NAME.test(name) ? null : 'expected a node name ([A-Za-z0-9._-], 1 to 63 characters)';
  if (/\s/.test(name)) return 'must not contain whitespace';
  if (name.includes(':')) return 'must not contain ":"';
  if (name.includes('/')) return 'must not contain "/"';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'must not contain control characters';
  return null;
}

export function validNodeName(name: string): boolean {
  return nameProblem('node', name) === null;
}

/** Levels only the monitor uses while it places a group: an admin never asks for them. */
export const MONITOR_LEVELS: ReadonlySet<string> = new Set(['plan', 'test']);
