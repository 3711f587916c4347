// The short name an id goes by on the page: its last 8 hex digits. Run ids are time-ordered
// (UUID v7: the first 12 digits are the millisecond they were made in), so runs started
// together share their first digits and only the random end tells them apart.
export function shortId(id: string): string {
  return id.slice(-8);
}
