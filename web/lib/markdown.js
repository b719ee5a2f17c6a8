// Markdown of model output, rendered safely: raw HTML in the text (a tag or an HTML block) is
// shown as text, never parsed, and DOMPurify cleans what marked produced (javascript: links,
// anything marked let through) before it reaches the page.
import { Marked } from 'marked';
import DOMPurify from 'dompurify';

const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const marked = new Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: {
    html: (token) => escapeHtml(token.text),
  },
});

export function renderMarkdown(text) {
  const html = marked.parse(text ?? '');
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, FORBID_TAGS: ['style', 'form', 'input', 'img'], FORBID_ATTR: ['style'] });
}

export { escapeHtml };
