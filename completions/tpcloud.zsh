#compdef tpcloud

_tpcloud_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _TPCLOUD_COMPLETE=complete_zsh tpcloud)
}

compdef _tpcloud_completion tpcloud
