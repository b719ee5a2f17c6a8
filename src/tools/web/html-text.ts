// HTML → readable text for web_fetch (api.md §27.5): linkedom parses the page, Mozilla's
// Readability picks the article, and a small DOM walk writes it out as plain text with
// paragraph breaks, `#` headings and `- ` list items (light Markdown the model reads well).
// Pages Readability finds no article in, or that are too big for it, are read whole.
import { Readability } from '@mozilla/readability';
import { parseHTML } from 'linkedom';

const SKIP = new Set(['TITLE', 'SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'SVG', 'HEAD', 'IFRAME', 'OBJECT', 'CANVAS', 'BUTTON', 'SELECT']);
const BLOCK = new Set([
  'ADDRESS', 'ARTICLE', 'ASIDE', 'BLOCKQUOTE', 'BODY', 'DD', 'DETAILS', 'DIV', 'DL', 'DT', 'FIELDSET', 'FIGCAPTION', 'FIGURE',
  'FOOTER', 'FORM', 'HEADER', 'HR', 'MAIN', 'NAV', 'OL', 'P', 'SECTION', 'SUMMARY', 'TABLE', 'TBODY', 'THEAD', 'TFOOT', 'UL',
]);
const HEADING = /^H([1-6])$/;

interface DomNode {
  nodeType: number;
  nodeName: string;
  textContent: string | null;
  firstChild: DomNode | null;
  nextSibling: DomNode | null;
}

/** Collects text with pending line breaks, so blocks never stack more than one blank line. */
class TextOut {
  private parts: string[] = [];
  private breaks = 0;
  private atLineStart = true;

  /** Asks for `n` newlines before the next text (1 = new line, 2 = new paragraph). */
  brk(n: number): void {
    if (this.parts.length) this.breaks = Math.max(this.breaks, n);
  }

  write(s: string, verbatim = false): void {
    let text = verbatim ? s : s.replace(/\s+/g, ' ');
    if (!verbatim && (this.atLineStart || this.breaks)) text = text.replace(/^ /, '');
    if (!text) return;
    if (this.breaks) {
      this.parts.push('\n'.repeat(this.breaks));
      this.breaks = 0;
    }
    this.parts.push(text);
    this.atLineStart = text.endsWith('\n');
  }

  toString(): string {
    return this.parts
      .join('')
      .split('\n')
      .map((l) => l.trimEnd())
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trim();
  }
}

/** What an element writes before its children; what it asks for after them. */
function open(tag: string, out: TextOut): number {
  const heading = HEADING.exec(tag);
  if (heading) {
    out.brk(2);
    out.write('#'.repeat(Number(heading[1])) + ' ');
    return 2;
  }
  if (tag === 'LI') {
    out.brk(1);
    out.write('- ');
    return 1;
  }
  if (tag === 'TR' || tag === 'DT' || tag === 'DD') {
    out.brk(1);
    return tag === 'TR' ? 1 : 0;
  }
  if (tag === 'TD' || tag === 'TH') {
    out.write(' ');
    return 0;
  }
  if (tag === 'PRE' || BLOCK.has(tag)) {
    out.brk(2);
    return 2;
  }
  return 0;
}

/** Depth-first over the subtree, iteratively: a page nested thousands deep cannot overflow the stack. */
function walk(root: DomNode, out: TextOut): void {
  type Frame = { node: DomNode; pre: boolean; after: number | null };
  const stack: Frame[] = [{ node: root, pre: false, after: null }];
  while (stack.length) {
    const f = stack.pop()!;
    if (f.after !== null) {
      if (f.after) out.brk(f.after);
      continue;
    }
    const node = f.node;
    if (node.nodeType === 3) {
      out.write(node.textContent ?? '', f.pre);
      continue;
    }
    if (node.nodeType !== 1 && node.nodeType !== 9 && node.nodeType !== 11) continue;
    const tag = node.nodeName.toUpperCase();
    if (SKIP.has(tag)) continue;
    if (tag === 'BR') {
      out.write('\n', true);
      continue;
    }
    stack.push({ node, pre: f.pre, after: open(tag, out) });
    const pre = f.pre || tag === 'PRE';
    const children: DomNode[] = [];
    for (let c = node.firstChild; c; c = c.nextSibling) children.push(c);
    for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i], pre, after: null });
  }
}

/** The readable text of a DOM subtree. */
export function nodeText(node: unknown): string {
  const out = new TextOut();
  walk(node as DomNode, out);
  return out.toString();
}

/**
 * A parsed document. linkedom builds no <html>/<body> around a fragment (and then fails on
 * `document.body`), so a source without an <html> tag is wrapped in one first.
 */
function parse(html: string) {
  const whole = /<html[\s>]/i.test(html) ? html : `<!doctype html><html><head></head><body>${html}</body></html>`;
  return parseHTML(whole).document;
}

/**
 * Readability on a linkedom DOM costs about a third of a millisecond per element and blocks the
 * worker while it runs; bigger pages (after scripts and styles are dropped) are read whole.
 */
export const READABILITY_MAX_ELEMENTS = 5000;

/** The title and readable text of an HTML page. */
export function htmlToText(html: string): { title: string | null; text: string } {
  const document = parse(html);
  const docTitle = document.querySelector('title')?.textContent?.replace(/\s+/g, ' ').trim() || null;
  for (const el of [...document.querySelectorAll('script,style,noscript,template,svg,iframe,object,canvas')]) el.remove();
  const tryReadability = !!document.body && document.querySelectorAll('*').length <= READABILITY_MAX_ELEMENTS;
  if (tryReadability) {
    let article: ReturnType<Readability<string>['parse']> = null;
    try {
      article = new Readability<string>(document as unknown as Document, { serializer: (n) => nodeText(n) }).parse();
    } catch {
      article = null; // a page Readability cannot handle is still read as a whole below
    }
    if (article?.content) return { title: article.title?.replace(/\s+/g, ' ').trim() || docTitle, text: article.content };
  }
  // Readability edits the document while it works, so then the body is read from a fresh parse.
  const whole = tryReadability ? parse(html) : document;
  return { title: docTitle, text: nodeText(whole.body ?? whole.documentElement ?? whole) };
}
