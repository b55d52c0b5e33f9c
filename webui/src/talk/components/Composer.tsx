// A typed message (POST /chat); before any session exists it starts one.
import { useState } from "react";
import { ApiError } from "../../api/client";
import { ErrorNote } from "../../components/ErrorNote";

export function Composer({ onSend }: { onSend: (text: string) => Promise<void> }) {
  const [text, setText] = useState("");
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async () => {
    const said = text.trim();
    if (!said || sending) return;
    setSending(true);
    setError(null);
    setText("");
    try {
      await onSend(said);
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError("client-error", String(err), 0));
      setText((current) => current || said);
    } finally {
      setSending(false);
    }
  };
  return (
    <form
      className="talk-composer"
      onSubmit={(event) => {
        event.preventDefault();
        void submit();
      }}
    >
      <label htmlFor="talk-message">Message</label>
      <div className="talk-composer-row">
        <input
          id="talk-message"
          type="text"
          name="message"
          value={text}
          maxLength={4000}
          autoComplete="off"
          placeholder="Type instead of speaking"
          onChange={(event) => setText(event.target.value)}
        />
        <button type="submit" className="primary" disabled={sending || !text.trim()}>
          {sending ? "Sending…" : "Send"}
        </button>
      </div>
      <ErrorNote error={error} what="The message was not answered" />
    </form>
  );
}
