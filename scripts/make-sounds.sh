#!/usr/bin/env bash
# make-sounds.sh — (re)generates every prompt ccard ships under sounds/, reproducibly.
#
#   Requirements (Debian/Ubuntu):  apt-get install -y espeak-ng sox
#   Usage:                         scripts/make-sounds.sh [OUTPUT_DIR]      (default: <repo>/sounds)
#
# Layout (FreeSWITCH's own sound layout, so relative names resolve against sound_prefix=<sounds>/<lang>):
#   sounds/<lang>/ccard/<rate>/<prompt>.wav     every prompt in src/flow/prompts.ts (PROMPTS)
#   sounds/<lang>/digits/<rate>/*.wav           \
#   sounds/<lang>/currency/<rate>/*.wav          > the files mod_say_<lang> requests for
#   sounds/<lang>/time/<rate>/*.wav             /  CURRENCY, NUMBER (PRONOUNCED) and TIME_MEASUREMENT
#   sounds/MANIFEST.txt                         one line per file: path, duration, spoken text
# Rates 8000 and 16000 Hz; mono, 16-bit signed PCM WAV. mod_sndfile opens <prefix>/<dir>/<channel rate>/<name>
# first, so an 8 kHz (PCMU/PCMA) or 16 kHz (G.722) call plays its file without resampling.
#
# Reproducible: the English prompt texts are read from src/flow/prompts.ts; other languages come from the tables
# below (the script fails if a prompt has no translation). espeak-ng is deterministic for a given version; sox runs
# with -R (repeatable) and -D (no dither), so the same tool versions give byte-identical files.
# Each file: espeak-ng (22050 Hz) -> trim leading/trailing silence -> normalise to -3 dBFS -> 50 ms / 120 ms pad
# -> high-quality resample to the target rate.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-"$ROOT/sounds"}
PROMPTS_TS="$ROOT/src/flow/prompts.ts"
RATES=(8000 16000)
SPEED=160 # words per minute (espeak-ng default 175; a little slower is easier to follow on a phone line)

declare -A VOICE=([en]=en-us [es]=es-419)
LANGS=(en es)

for tool in espeak-ng sox soxi; do
  command -v "$tool" >/dev/null || { echo "make-sounds: $tool not found (apt-get install -y espeak-ng sox)" >&2; exit 1; }
done
export LC_ALL=C.UTF-8

# ---------------------------------------------------------------------------------------------------------------
# Prompt translations (key = prompt name in PROMPTS). English is taken from prompts.ts itself.
declare -A PROMPT_es=(
  [welcome]='Bienvenido.'
  [enter_pin]='Por favor, ingrese su PIN, seguido de la tecla numeral.'
  [invalid_pin]='Ese PIN no es válido.'
  [too_many_attempts]='Demasiados intentos. Adiós.'
  [locked_out]='Demasiados intentos fallidos. Por favor, inténtelo más tarde. Adiós.'
  [card_unknown]='Esta tarjeta no es válida.'
  [card_disabled]='Esta tarjeta ha sido desactivada. Por favor, comuníquese con atención al cliente.'
  [card_expired]='Esta tarjeta ha vencido.'
  [card_activated]='Su tarjeta ya está activa.'
  [no_balance]='Su saldo es insuficiente para realizar una llamada.'
  [insufficient_balance]='Su saldo es insuficiente para llamar a ese destino.'
  [too_many_calls]='Esta tarjeta ya está en uso en otra llamada.'
  [try_again]='No se pudo establecer su llamada. Por favor, inténtelo de nuevo.'
  [service_unavailable]='El servicio no está disponible en este momento. Por favor, inténtelo más tarde.'
  [number_not_in_service]='Este número de acceso no está en servicio.'
  [you_have]='Usted tiene'
  [remaining_balance]='Su saldo restante es'
  [enter_destination]='Por favor, marque el número al que desea llamar, seguido de la tecla numeral. Para escuchar su saldo, presione asterisco.'
  [invalid_destination]='Ese número no es válido.'
  [destination_not_allowed]='No se permiten llamadas a ese número.'
  [no_rate]='Las llamadas a ese destino no están disponibles.'
  [destination_unprofitable]='No se pueden hacer llamadas a ese destino con esta tarjeta.'
  [call_can_last]='Esta llamada puede durar hasta'
  [minutes]='minutos'
  [minute]='minuto'
  [less_than_one_minute]='Esta llamada puede durar menos de un minuto.'
  [busy]='El número al que llamó está ocupado.'
  [no_answer]='No hay respuesta.'
  [invalid_number]='El número que marcó no está en servicio.'
  [congestion]='Todos los circuitos están ocupados. Por favor, inténtelo más tarde.'
  [call_failed]='No se pudo completar su llamada.'
  [low_balance_warning]='Le queda un minuto.'
  [another_call]='Para hacer otra llamada, presione 1.'
  [bind_cli_offer]='Para llamar desde este teléfono sin PIN, presione 1.'
  [cli_bound]='Este teléfono ha quedado registrado con su tarjeta.'
  [goodbye]='Gracias por su llamada. Adiós.'
  [voucher_offer]='Para recargar su tarjeta con un cupón, presione 0.'
  [enter_voucher]='Por favor, ingrese el número del cupón, seguido de la tecla numeral.'
  [voucher_accepted]='Su tarjeta ha sido recargada.'
  [voucher_invalid]='Ese cupón no es válido.'
  [voucher_wrong_currency]='Ese cupón no se puede usar con esta tarjeta.'
)

# ---------------------------------------------------------------------------------------------------------------
# say files: "dir/name|text". The names are exactly what the say modules request (signalwire/freeswitch
# src/mod/say/mod_say_en/mod_say_en.c and mod_say_es/mod_say_es.c: play_group, *_say_general_count,
# *_say_time (SST_TIME_MEASUREMENT branch), *_say_money), for CURRENCY, NUMBER (PRONOUNCED) and TIME_MEASUREMENT.
SAY_en=(
  'digits/0|zero' 'digits/1|one' 'digits/2|two' 'digits/3|three' 'digits/4|four' 'digits/5|five'
  'digits/6|six' 'digits/7|seven' 'digits/8|eight' 'digits/9|nine' 'digits/10|ten' 'digits/11|eleven'
  'digits/12|twelve' 'digits/13|thirteen' 'digits/14|fourteen' 'digits/15|fifteen' 'digits/16|sixteen'
  'digits/17|seventeen' 'digits/18|eighteen' 'digits/19|nineteen'
  'digits/20|twenty' 'digits/30|thirty' 'digits/40|forty' 'digits/50|fifty' 'digits/60|sixty'
  'digits/70|seventy' 'digits/80|eighty' 'digits/90|ninety'
  'digits/hundred|hundred' 'digits/thousand|thousand' 'digits/million|million'
  'currency/dollar|dollar' 'currency/dollars|dollars' 'currency/cent|cent' 'currency/cents|cents'
  'currency/and|and' 'currency/negative|negative'
  'time/hour|hour' 'time/hours|hours' 'time/minute|minute' 'time/minutes|minutes'
  'time/second|second' 'time/seconds|seconds'
)
# mod_say_es: 1-9 hundreds as digits/N + digits/hundreds except 100 (digits/100 "cien", digits/hundred "ciento"
# when followed by tens/units), 500/700/900; 21-29 as digits/veinti + digits/N; 31-99 as digits/N0 +
# currency/and ("y") + digits/N; one million as digits/un + digits/million, otherwise digits/millions.
SAY_es=(
  'digits/0|cero' 'digits/1|uno' 'digits/2|dos' 'digits/3|tres' 'digits/4|cuatro' 'digits/5|cinco'
  'digits/6|seis' 'digits/7|siete' 'digits/8|ocho' 'digits/9|nueve' 'digits/10|diez' 'digits/11|once'
  'digits/12|doce' 'digits/13|trece' 'digits/14|catorce' 'digits/15|quince' 'digits/16|dieciséis'
  'digits/17|diecisiete' 'digits/18|dieciocho' 'digits/19|diecinueve'
  'digits/20|veinte' 'digits/veinti|veinti' 'digits/30|treinta' 'digits/40|cuarenta' 'digits/50|cincuenta'
  'digits/60|sesenta' 'digits/70|setenta' 'digits/80|ochenta' 'digits/90|noventa'
  'digits/100|cien' 'digits/hundred|ciento' 'digits/hundreds|cientos' 'digits/500|quinientos'
  'digits/700|setecientos' 'digits/900|novecientos'
  'digits/un|un' 'digits/thousand|mil' 'digits/million|millón' 'digits/millions|millones'
  'currency/dollar|dólar' 'currency/dollars|dólares' 'currency/cent|centavo' 'currency/cents|centavos'
  'currency/and|y' 'currency/negative|menos'
  'time/hour|hora' 'time/hours|horas' 'time/minute|minuto' 'time/minutes|minutos'
  'time/second|segundo' 'time/seconds|segundos'
)

# ---------------------------------------------------------------------------------------------------------------
# English prompt texts from prompts.ts: lines of the form `  name: 'Text.',` inside PROMPTS.
declare -A PROMPT_en=()
PROMPT_ORDER=()
while IFS=$'\t' read -r name text; do
  PROMPT_en[$name]=$text
  PROMPT_ORDER+=("$name")
done < <(sed -n "/^export const PROMPTS = {/,/^} as const;/p" "$PROMPTS_TS" |
  sed -n "s/^  \([a-z0-9_]*\): '\([^']*\)',\$/\1\t\2/p")
[[ ${#PROMPT_ORDER[@]} -gt 0 ]] || { echo "make-sounds: no prompts parsed from $PROMPTS_TS" >&2; exit 1; }

missing=0
for lang in "${LANGS[@]}"; do
  [[ $lang == en ]] && continue
  declare -n table="PROMPT_$lang"
  for name in "${PROMPT_ORDER[@]}"; do
    [[ -n ${table[$name]:-} ]] || { echo "make-sounds: no $lang translation for prompt '$name'" >&2; missing=1; }
  done
  for name in "${!table[@]}"; do
    [[ -n ${PROMPT_en[$name]:-} ]] || { echo "make-sounds: $lang translation for unknown prompt '$name'" >&2; missing=1; }
  done
  unset -n table
done
[[ $missing == 0 ]] || exit 1

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
MANIFEST="$WORK/MANIFEST.txt"

# render LANG DIR NAME TEXT -> $OUT/LANG/DIR/<rate>/NAME.wav for every rate
render() {
  local lang=$1 dir=$2 name=$3 text=$4 rate out
  espeak-ng -v "${VOICE[$lang]}" -s "$SPEED" -b 1 -w "$WORK/src.wav" "$text"
  for rate in "${RATES[@]}"; do
    out="$OUT/$lang/$dir/$rate/$name.wav"
    mkdir -p "${out%/*}"
    sox -R -D -V1 "$WORK/src.wav" -c 1 -b 16 -e signed-integer "$out" \
      silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \
      norm -3 pad 0.05 0.12 rate -h "$rate"
    printf '%s\t%.3fs\t%s\n' "$lang/$dir/$rate/$name.wav" "$(soxi -D "$out")" "$text" >>"$MANIFEST"
  done
}

for lang in "${LANGS[@]}"; do
  # start clean so no stale file survives a rename
  rm -rf "$OUT/$lang/ccard" "$OUT/$lang/digits" "$OUT/$lang/currency" "$OUT/$lang/time"
  declare -n table="PROMPT_$lang"
  for name in "${PROMPT_ORDER[@]}"; do
    render "$lang" ccard "$name" "${table[$name]}"
  done
  unset -n table
  declare -n say="SAY_$lang"
  for entry in "${say[@]}"; do
    path=${entry%%|*}
    render "$lang" "${path%%/*}" "${path#*/}" "${entry#*|}"
  done
  unset -n say
done

{
  echo "# ccard sounds — generated by scripts/make-sounds.sh; do not edit by hand."
  echo "# $(espeak-ng --version | sed 's/ *Data at:.*//'); $(sox --version | sed 's/^sox: *//')"
  echo "# voices: en=${VOICE[en]} es=${VOICE[es]}; speed ${SPEED} wpm; mono 16-bit PCM WAV at ${RATES[*]} Hz"
  echo "# path (relative to sounds/)<TAB>duration<TAB>spoken text"
  LC_ALL=C sort "$MANIFEST"
} >"$OUT/MANIFEST.txt"

count=$(grep -vc '^#' "$OUT/MANIFEST.txt")
echo "make-sounds: $count files in $OUT ($(du -sh "$OUT" | cut -f1))"
