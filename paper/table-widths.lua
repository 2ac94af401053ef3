-- Tables that fit the page in HTML and PDF alike.
--
-- 1. Long identifiers in cells (IFEval's `detectable_format:number_highlighted_sections`)
--    get a zero-width space after each _ : / so they can wrap there instead of running
--    into the next column (in both formats; it is invisible).
-- 2. PDF (typst) column widths. Pandoc gives a pipe table wider than 72 characters
--    relative widths from its dash counts, and typst sets a column to exactly its share
--    (auto columns too are shrunk by a fair share that ignores the longest word), so a
--    word wider than its column ran into the next one. Here each column gets at least its
--    longest unbreakable word, and what is left of the line goes to the columns in
--    proportion to how much more their longest body cell needs (headers wrap between their
--    words); a table that fits keeps
--    typst's automatic layout. HTML keeps the dash widths (mlx_instruct.analysis.report.md_table sets
--    them by content; a browser never squeezes a column below its longest word).
local ZWSP = "\u{200B}"
local LINE = 100 -- characters of 10pt text across the typst text width (A4, 1.8 cm margins)
local PAD = 2 -- a cell's inset (5pt a side), in characters

local function breakable(el)
  if utf8.len(el.text) and utf8.len(el.text) > 8 and el.text:find("[_:/]") then
    el.text = el.text:gsub("([_:/])", "%1" .. ZWSP)
    return el
  end
end

local function measure(tbl)
  local natural, minimum = {}, {}
  local function row(r, header)
    local j = 1
    for _, cell in ipairs(r.cells) do
      local text = pandoc.utils.stringify(cell.contents)
      local longest = 0
      for word in text:gsub(ZWSP, " "):gmatch("[^%s%-]+%-?") do
        longest = math.max(longest, utf8.len(word) or #word)
      end
      if cell.col_span == 1 then -- a header may wrap between its words: only its longest counts
        minimum[j] = math.max(minimum[j] or 0, longest + PAD)
        natural[j] = math.max(natural[j] or 0, minimum[j], header and 0 or (utf8.len(text) or #text) + PAD)
      end
      j = j + cell.col_span
    end
  end
  for _, r in ipairs(tbl.head.rows) do row(r, true) end
  for _, body in ipairs(tbl.bodies) do
    for _, r in ipairs(body.head) do row(r, true) end
    for _, r in ipairs(body.body) do row(r) end
  end
  for _, r in ipairs(tbl.foot.rows) do row(r) end
  return natural, minimum
end

local function typst_widths(tbl)
  local natural, minimum = measure(tbl)
  local n, total, floor, slack = #tbl.colspecs, 0, 0, 0
  for j = 1, n do
    natural[j], minimum[j] = natural[j] or PAD, minimum[j] or PAD
    total, floor = total + natural[j], floor + minimum[j]
    slack = slack + natural[j] - minimum[j]
  end
  for j = 1, n do
    local width = pandoc.ColWidthDefault -- fits: typst's own layout
    if total > LINE then
      local extra = floor < LINE and slack > 0 and (LINE - floor) * (natural[j] - minimum[j]) / slack or 0
      width = (minimum[j] + extra) / math.max(LINE, floor)
    end
    tbl.colspecs[j] = { tbl.colspecs[j][1], width }
  end
  return tbl
end

function Table(tbl)
  tbl = tbl:walk({ Str = breakable })
  if FORMAT:match("typst") then
    tbl = typst_widths(tbl)
  end
  return tbl
end
